"""The markdown table of docs/results.md, from runs that `mannlab eval` has scored.

    .venv/bin/python benchmarks/results_table.py [--curves] RUN [RUN ...]

One row per run (its first seed): steps and training time (summary.json),
then micro and weighted F1 and whole-answer accuracy on the training and
held-out splits (eval.json), and a row per baseline of the task (POS: the
most frequent tag and the word-only oracle), once per task. With
``--curves``, each run's learning curve follows: the F1 records that
``train.score_every`` logged (scores_train, scores_heldout in metrics.jsonl).
"""

import json
import sys

from mannlab.training.rundir import open_run


def row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def scores(split: dict) -> list[str]:
    return [f"{split[k]:.3f}" if k in split else "" for k in
            ("micro_f1", "weighted_f1", "whole_accuracy")]


def label(config) -> str:
    """The model, with what sets a run apart from the shipped config."""
    name = config.model.name
    if name == "mann_rl" and config.model.no_memory:
        name += " (no memory)"
    if config.train.mann_rl is not None and config.train.mann_rl.schedule != "batches":
        name += f", {config.train.mann_rl.schedule}"
    return name


def curve(run: str) -> None:
    _, config, seeds = open_run(run)
    records = [json.loads(line) for line in
               (seeds[0] / "metrics.jsonl").read_text().splitlines()]
    points: dict[int, dict] = {}
    for r in records:
        if r["split"] in ("scores_train", "scores_heldout"):
            points.setdefault(r["step"], {"seconds": r["seconds"]})[r["split"]] = r
    print(f"\n{run} ({label(config)}):\n")
    print(row(["step", "seconds", "train micro F1", "train weighted F1", "held-out micro F1",
               "held-out weighted F1"]))
    print(row(["---"] * 6))
    for step, p in sorted(points.items()):
        cells = [f"{p[k][m]:.3f}" if k in p else "" for k in ("scores_train", "scores_heldout")
                 for m in ("micro_f1", "weighted_f1")]
        print(row([step, f"{p['seconds']:.0f}", *cells]))


def main(runs: list[str]) -> int:
    curves = "--curves" in runs
    runs = [r for r in runs if r != "--curves"]
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
        print(row([config.task.name, label(config), summary["steps"],
                   f"{summary['seconds']:.0f}", *scores(splits["train"]),
                   *scores(splits["heldout"])]))
        if run is runs[-1] or open_run(runs[runs.index(run) + 1])[1].task.name != \
                config.task.name:  # the baselines once, after the task's last run
            for name, base in evaluation["splits"]["baselines"].items():
                print(row(["", name, "", "", *scores(base["train"]), *scores(base["heldout"])]))
    for run in runs if curves else ():
        curve(run)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
