"""Write the Chomsky-hierarchy test fixtures with the reference generators.

Runs the task generators of google-deepmind/neural_networks_chomsky_hierarchy
(Delétang et al., ICLR 2023) and saves, per task, a few hundred (input,
output) token-id pairs at several lengths, so that mannlab's tasks
(`mannlab.tasks.chomsky`) can be checked against them
(tests/test_chomsky_tasks.py). Not part of mannlab: it needs the reference
code and its own environment (jax, chex, dm-tree, tqdm), run once::

    python -m venv /tmp/chomsky-ref-venv
    /tmp/chomsky-ref-venv/bin/pip install absl-py dm-haiku dm-tree jax numpy optax tqdm chex
    # the reference snapshot unpacked as /tmp/chomsky-ref/neural_networks_chomsky_hierarchy
    PYTHONPATH=/tmp/chomsky-ref /tmp/chomsky-ref-venv/bin/python scripts/chomsky_fixtures.py \
        src/mannlab/data/chomsky-fixtures

Each task's file ``<task>.npz`` holds ``input_<L>`` [N, n] and ``output_<L>``
[N, k] (uint8 token ids; k = 1 for the one-answer tasks) for each requested
length L (the reference's ``length`` argument: modular arithmetic gives
inputs of L - 1 tokens when L is even). The tasks are built as the
reference's ``experiments/constants.py: TASK_BUILDERS`` builds them (that
module itself is not imported: it needs the models' dependencies), a new
task object for each length (see `main`).
"""

import functools
import random
import sys
from pathlib import Path

import jax
import numpy as np
from neural_networks_chomsky_hierarchy.tasks.cs import (
    binary_addition,
    binary_multiplication,
    bucket_sort,
    compute_sqrt,
    duplicate_string,
    missing_duplicate_string,
    odds_first,
)
from neural_networks_chomsky_hierarchy.tasks.dcf import (
    modular_arithmetic_brackets,
    reverse_string,
    solve_equation,
    stack_manipulation,
)
from neural_networks_chomsky_hierarchy.tasks.regular import (
    cycle_navigation,
    even_pairs,
    modular_arithmetic,
    parity_check,
)

BUILDERS = {
    "even_pairs": even_pairs.EvenPairs,
    "modular_arithmetic": modular_arithmetic.ModularArithmetic,
    "parity_check": parity_check.ParityCheck,
    "cycle_navigation": cycle_navigation.CycleNavigation,
    "modular_arithmetic_brackets": functools.partial(
        modular_arithmetic_brackets.ModularArithmeticBrackets, mult=True),
    "reverse_string": reverse_string.ReverseString,
    "stack_manipulation": stack_manipulation.StackManipulation,
    "solve_equation": solve_equation.SolveEquation,
    "duplicate_string": duplicate_string.DuplicateString,
    "missing_duplicate_string": missing_duplicate_string.MissingDuplicateString,
    "odds_first": odds_first.OddsFirst,
    "binary_addition": binary_addition.BinaryAddition,
    "binary_multiplication": binary_multiplication.BinaryMultiplication,
    "compute_sqrt": compute_sqrt.ComputeSqrt,
    "bucket_sort": bucket_sort.BucketSort,
}
LENGTHS = (1, 2, 3, 4, 5, 6, 7, 10, 16, 25, 40, 41, 64, 100)
PER_LENGTH = 24


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for k, (name, build) in enumerate(BUILDERS.items()):
        arrays = {}
        for length in LENGTHS:
            # a new task per length: the reference's ModularArithmetic keeps its
            # operators in a generator, used up by the first length's jit trace
            task = build()
            seed = 1000 * k + length
            random.seed(seed)
            np.random.seed(seed)
            batch = task.sample_batch(jax.random.PRNGKey(seed), PER_LENGTH, length)
            inputs = np.asarray(batch["input"]).argmax(-1)
            outputs = np.asarray(batch["output"]).argmax(-1).reshape(PER_LENGTH, -1)
            assert np.asarray(batch["input"]).sum(-1).min() == 1, (name, length)
            arrays[f"input_{length}"] = inputs.astype(np.uint8)
            arrays[f"output_{length}"] = outputs.astype(np.uint8)
        np.savez_compressed(out / f"{name}.npz", **arrays)
        print(name, task.input_size, task.output_size,
              {n: arrays[f"output_{n}"].shape[1] for n in (1, 40)})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
