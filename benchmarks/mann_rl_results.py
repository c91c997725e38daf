"""The paper's metric (F1 over output symbols) for trained runs, on train AND held-out data.

    .venv/bin/python benchmarks/mann_rl_results.py RUN [RUN ...] [--train-limit N] [--json OUT]

For each run (first seed): micro and weighted F1 (`symbol_scores`) and
whole-answer accuracy (logic: the answer symbol; POS and sentences: the whole
sentence right) on the task's training split (`train_eval_batches`, the
paper's reported set) and its held-out split (`eval_batches`), plus the
run's wall-clock training time (summary.json). Works for any mannlab model
on the logic, pos and sentences tasks. For POS it also prints the
most-frequent-tag baseline.
"""

import argparse
import json
import sys
from pathlib import Path

from mannlab import runtime


def scores(model, task, batches) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    @jax.jit
    def run(batch):
        ys, _ = model(batch.inputs, model.init_state(batch.inputs.shape[1]), batch.step_mask)
        return ys, task.loss(ys, batch)[1]

    outputs, whole = [], []
    for b in batches:
        ys, metrics = run(jax.tree.map(jnp.asarray, b))
        outputs.append((np.asarray(ys), b))
        key = "answer_error" if "answer_error" in metrics else "sequence_error"
        whole.append(1.0 - np.asarray(metrics[key]))
    out = task.symbol_scores(outputs)
    out["whole_accuracy"] = float(np.concatenate(whole).mean())
    out["sequences"] = int(sum(len(w) for w in whole))
    return out


def run_scores(run: Path, train_limit: int | None) -> dict:
    import equinox as eqx
    import jax

    from mannlab.training.evaluate import load_models
    from mannlab.training.rundir import open_run

    run, config, seed_dirs = open_run(run)
    task = config.task.build()
    params, static = load_models(config, task, seed_dirs[:1])
    model = eqx.combine(jax.tree.map(lambda x: x[0], params), static)
    summary = json.loads((seed_dirs[0] / "summary.json").read_text())
    result = {"run": str(run), "model": config.model.name, "task": config.task.name,
              "steps": summary["steps"], "seconds": summary["seconds"],
              "train": scores(model, task, task.train_eval_batches(256, train_limit)),
              "heldout": scores(model, task, task.eval_batches(256))}
    if hasattr(task, "most_frequent_tag_baseline"):
        result["baseline"] = task.most_frequent_tag_baseline()
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--train-limit", type=int, help="score only the first N training examples")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    runtime.configure("single")
    results = [run_scores(r, args.train_limit) for r in args.runs]
    print("| task | model | steps | time (s) | train micro F1 | train weighted F1 | "
          "train whole acc. | held-out micro F1 | held-out weighted F1 | held-out whole acc. |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        t, h = r["train"], r["heldout"]
        print(f"| {r['task']} | {r['model']} | {r['steps']} | {r['seconds']:.0f} | "
              f"{t['micro_f1']:.3f} | {t['weighted_f1']:.3f} | {t['whole_accuracy']:.3f} | "
              f"{h['micro_f1']:.3f} | {h['weighted_f1']:.3f} | {h['whole_accuracy']:.3f} |")
        if "baseline" in r:
            b = r["baseline"]
            print(f"|   | most-frequent tag | | | {b['train']['micro_f1']:.3f} | "
                  f"{b['train']['weighted_f1']:.3f} | | {b['heldout']['micro_f1']:.3f} | "
                  f"{b['heldout']['weighted_f1']:.3f} | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
