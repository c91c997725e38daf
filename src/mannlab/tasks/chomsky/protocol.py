"""The suite's score (Delétang et al. 2023, section 4): a model's score on a
task is its mean accuracy over test lengths beyond training (41..500), and a
task counts as solved at a score >= 90%.

Evaluating all 460 lengths costs hours per model on a CPU, so the score here
is the mean over a fixed, stated sample of them, ``TEST_LENGTHS`` with
``SEQUENCES`` sequences each (`mannlab.training.evaluate.protocol_score`
computes it for trained runs); ``max_length`` keeps only the lengths up to
it, and whoever uses it must say so beside the score.
"""

import numpy as np

TEST_LENGTHS = (41, 50, 75, 100, 150, 200, 300, 500)
"""The sample of the paper's test lengths 41..500 that the score averages over."""
SEQUENCES = 64
"""Sequences per test length."""
SOLVED = 0.9
"""A score at least this counts as solved (the paper's threshold)."""


def protocol_lengths(max_length: int | None = None) -> list[int]:
    """``TEST_LENGTHS`` up to `max_length` (all of them with None)."""
    if max_length is None:
        return list(TEST_LENGTHS)
    kept = [n for n in TEST_LENGTHS if n <= max_length]
    if not kept:
        raise ValueError(f"max_length: {max_length} keeps none of the test lengths "
                         f"{', '.join(map(str, TEST_LENGTHS))} (the shortest is 41)")
    return kept


def score(accuracy: dict) -> float:
    """The mean of per-length accuracies ``{length: accuracy}``."""
    if not accuracy:
        raise ValueError("score: no lengths to average")
    return float(np.mean(list(accuracy.values())))


def summary(scores: list[float]) -> dict:
    """Over seeds: the best score (the paper's statistic: the best of its
    seeds and learning rates), the median, and the fraction solved."""
    if not scores:
        raise ValueError("summary: no scores")
    return {"best": float(max(scores)), "median": float(np.median(scores)),
            "solved_rate": float(np.mean([s >= SOLVED for s in scores])), "seeds": len(scores)}
