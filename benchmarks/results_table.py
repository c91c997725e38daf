"""The markdown table of docs/results.md, from runs that `mannlab eval` has scored.

    .venv/bin/python benchmarks/results_table.py RUN [RUN ...]

One row per run (its first seed): steps and training time (summary.json),
then micro and weighted F1 and whole-answer accuracy on the training and
held-out splits (eval.json), and a row per baseline of the task (POS: the
most frequent tag).
"""

import json
import sys

from mannlab.training.rundir import open_run


def row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def scores(split: dict) -> list[str]:
    return [f"{split[k]:.3f}" if k in split else "" for k in
            ("micro_f1", "weighted_f1", "whole_accuracy")]


def main(runs: list[str]) -> int:
    print(row(["task", "model", "steps", "time (s)", "train micro F1", "train weighted F1",
               "train whole acc.", "held-out micro F1", "held-out weighted F1",
               "held-out whole acc."]))
    print(row(["---"] * 10))
    for run in runs:
        _, config, seeds = open_run(run)
        seed = seeds[0]
        summary = json.loads((seed / "summary.json").read_text())
        evaluation = json.loads((seed / "eval.json").read_text())
        splits = evaluation["splits"]["seeds"][seed.name]
        print(row([config.task.name, config.model.name, summary["steps"],
                   f"{summary['seconds']:.0f}", *scores(splits["train"]),
                   *scores(splits["heldout"])]))
        for name, base in evaluation["splits"]["baselines"].items():
            print(row(["", name, "", "", *scores(base["train"]), *scores(base["heldout"])]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
