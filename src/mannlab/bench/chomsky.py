"""The Chomsky-hierarchy suite (Delétang et al., ICLR 2023, arXiv:2207.02098)
as a `mannlab bench` suite: its 15 tasks (`mannlab.tasks.chomsky`), the
shipped ``<model>-chomsky-reverse-string`` configs with ``task.task`` set,
the protocol's score (`mannlab.tasks.chomsky.protocol`,
`mannlab.training.evaluate.protocol_score`) and the paper's Table 2 as far as
it could be read (``data/chomsky-reference/table2.json``, with its sources).
"""

import json
from pathlib import Path
from typing import ClassVar

from mannlab.config import ConfigError, RunConfig
from mannlab.tasks.chomsky import TASKS, protocol
from mannlab.training.evaluate import protocol_score

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "data" / "chomsky-reference" / "table2.json"

DEFAULT_TASKS = ("parity_check", "modular_arithmetic", "reverse_string", "stack_manipulation",
                 "duplicate_string", "odds_first", "binary_addition")
"""The subset issue 19 runs first (item 4); ``--tasks all`` gives all 15."""


class ChomskySuite:
    """The `Suite` of the Chomsky-hierarchy tasks."""

    name = "chomsky"
    title = "Chomsky hierarchy (Delétang et al. 2023)"
    tasks = tuple(TASKS)  # regular, then deterministic context-free, then context-sensitive
    default_tasks = DEFAULT_TASKS
    models: ClassVar[dict[str, str]] = {"lstm": "lstm-chomsky-reverse-string", "ntm": "ntm-chomsky-reverse-string",
              "dnc": "dnc-chomsky-reverse-string"}
    score_name = "score"
    curve_name = "accuracy"
    higher_is_better = True
    columns = (("best", "best", "percent"), ("median", "median", "percent"),
               ("solved_rate", "solved", "rate"))
    solved_note = f"solved (*): score >= {protocol.SOLVED:.0%}"

    def reference(self) -> dict:
        return json.loads(REFERENCE_FILE.read_text())

    def task_overrides(self, task: str) -> list[str]:
        return [f"task.task={task}"]

    def evaluation(self, max_length: int | None, sequences: int | None) -> dict:
        try:
            lengths = protocol.protocol_lengths(max_length)
        except ValueError as err:
            raise ConfigError(f"--max-length {max_length}: keeps none of the test lengths "
                              f"{', '.join(map(str, protocol.TEST_LENGTHS))}") from err
        return {"lengths": lengths, "sequences": sequences or protocol.SEQUENCES,
                "max_length": max_length}

    def describe_evaluation(self, evaluation: dict) -> str:
        cut = (f", cut at --max-length {evaluation['max_length']}"
               if evaluation["max_length"] is not None else "")
        return (f"test lengths {' '.join(map(str, evaluation['lengths']))}{cut}, "
                f"{evaluation['sequences']} sequences each")

    def score(self, config: RunConfig, seed_dirs: list[Path], evaluation: dict) -> dict:
        result = protocol_score(config, seed_dirs, evaluation["max_length"],
                                evaluation["sequences"])
        return {name: {"score": s["score"], "curve": s["accuracy"]}
                for name, s in result["seeds"].items()}

    def summary(self, scores: list[float]) -> dict:
        return protocol.summary(scores)

    def solved(self, value: float) -> bool:
        return value >= protocol.SOLVED

    def summary_rows(self, table: dict, tasks: list[str], models: list[str]) -> list[dict]:
        return []

    def budget(self, per_model, evaluation: dict) -> dict:
        return {"training_lengths": per_model(
                    lambda c: f"{c.task.min_length}..{c.task.max_length}"),
                "test_lengths": evaluation["lengths"], "sequences": evaluation["sequences"],
                "max_length": evaluation["max_length"]}
