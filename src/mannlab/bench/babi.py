"""The bAbI suite (Weston et al. 2015) as a `mannlab bench` suite: the 20
tasks (`mannlab.tasks.babi`), each trained alone (``task.tasks=[N]`` on the
shipped ``<model>-babi`` configs), scored by its word error rate on the test
split (`mannlab.training.evaluate.babi_errors`; lower is better, a task
fails above 5%), with a mean-error and a failed-tasks row per model, beside
the DNC paper's and Csordás & Schmidhuber's published errors
(``data/babi-reference/reference.json``, with its sources).

The published numbers are of joint training on all 20 tasks (one model for
every task); this suite trains one model per task (the issue's single-task
runs), so its rows compare a model's reach on each task, not the paper's
setting.
"""

import json
import statistics
from pathlib import Path
from typing import ClassVar

from mannlab.config import ConfigError, RunConfig
from mannlab.tasks.babi import ALL_TASKS, FAILED
from mannlab.training.evaluate import babi_errors

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "data" / "babi-reference" / "reference.json"

DEFAULT_TASKS = ("1", "2", "3", "19")
"""One-, two- and three-supporting-fact recall and path finding (issue 20's
single-task runs); ``--tasks all`` gives all 20."""

MEAN_ROW = "mean error"
FAILED_ROW = "failed tasks"


def error_summary(errors: list[float]) -> dict:
    """A task x model cell over its seeds' test word errors (fractions):
    ``mean``, ``best`` (lowest), ``median``, ``failed_rate`` (the fraction
    of seeds above 5%) and ``seeds``."""
    if not errors:
        raise ValueError("error_summary: no seeds to summarise")
    return {"mean": statistics.fmean(errors), "best": min(errors),
            "median": statistics.median(errors),
            "failed_rate": sum(e > FAILED for e in errors) / len(errors), "seeds": len(errors)}


def model_rows(table: dict, tasks: list[str], models: list[str]) -> list[dict]:
    """The rows under the tasks, from the task cells of `table` ({task:
    {model: cell or None}}); a model missing a task gets None in both.

    ``mean error`` (percent): ``mean``, the mean over tasks of the tasks'
    mean errors (= the mean over seeds of a seed's mean error over tasks),
    and ``best``, the mean over tasks of each task's best seed. ``failed
    tasks`` (a count): ``mean``, the expected number of failed tasks of a
    seed (the sum of the tasks' failed rates), and ``best``, the tasks whose
    best seed fails.
    """
    mean_cells, failed_cells = {}, {}
    for model in models:
        cells = [table.get(task, {}).get(model) for task in tasks]
        if not tasks or any(c is None for c in cells):
            mean_cells[model] = failed_cells[model] = None
            continue
        mean_cells[model] = {"mean": statistics.fmean(c["mean"] for c in cells),
                             "best": statistics.fmean(c["best"] for c in cells)}
        failed_cells[model] = {"mean": sum(c["failed_rate"] for c in cells),
                               "best": float(sum(c["best"] > FAILED for c in cells))}
    return [{"name": MEAN_ROW, "kind": "percent", "cells": mean_cells},
            {"name": FAILED_ROW, "kind": "count", "cells": failed_cells}]


class BabiSuite:
    """The `Suite` of the 20 bAbI tasks, one task per unit."""

    name = "babi"
    title = "bAbI question answering (Weston et al. 2015), single-task training"
    tasks = tuple(str(t) for t in ALL_TASKS)  # as task.tasks numbers them
    default_tasks = DEFAULT_TASKS
    models: ClassVar[dict[str, str]] = {"dnc": "dnc-babi", "dnc-md": "dnc-md-babi",
                                        "lstm": "lstm-babi", "ntm": "ntm-babi"}
    score_name = "test word error"
    curve_name = "word error"
    higher_is_better = False
    columns = (("mean", "mean", "percent"), ("best", "best", "percent"),
               ("failed_rate", "failed", "rate"))
    solved_note = (f"passed (*): the best seed's test word error <= {FAILED:.0%}; failed: the "
                   f"seeds above {FAILED:.0%} (the DNC paper's criterion)")

    def reference(self) -> dict:
        return json.loads(REFERENCE_FILE.read_text())

    def task_overrides(self, task: str) -> list[str]:
        return [f"task.tasks=[{task}]"]

    def evaluation(self, max_length: int | None, sequences: int | None) -> dict:
        if max_length is not None:
            raise ConfigError(f"--max-length {max_length}: the babi suite evaluates whole test "
                              "stories; leave --max-length out (--sequences N: the first N test "
                              "stories of each task)")
        return {"split": "test", "stories": sequences}

    def describe_evaluation(self, evaluation: dict) -> str:
        stories = evaluation["stories"]
        return ("test split, every story (1,000 questions a task)" if stories is None else
                f"test split, the first {stories} stories of each task")

    def budget(self, per_model, evaluation: dict) -> dict:
        def training(config: RunConfig) -> str:
            limit = config.task.train_stories
            return (f"one task, {config.task.train_size} questions"
                    + (f" (at most {limit} stories)" if limit is not None else ""))

        return {"training": per_model(training),
                "evaluation": self.describe_evaluation(evaluation)}

    def score(self, config: RunConfig, seed_dirs: list[Path], evaluation: dict) -> dict:
        errors = babi_errors(config, seed_dirs, evaluation["stories"])
        return {name: {"score": s["mean_error"], "curve": {}} for name, s in errors.items()}

    def summary(self, scores: list[float]) -> dict:
        return error_summary(scores)

    def summary_rows(self, table: dict, tasks: list[str], models: list[str]) -> list[dict]:
        return model_rows(table, tasks, models)

    def solved(self, value: float) -> bool:
        return value <= FAILED
