"""Sequential logic (MANN-RL paper, section 4.1).

Symbols: ``a n d o r x 0 1 = . |``, one-hot inputs and softmax outputs over the
same 11 symbols. An expression is the operator's letters, then its operands,
then ``=`` and ``|``: ``and``/``or`` take 2..20 operands, ``xor`` exactly 2.
One symbol goes in and one comes out per step. The output is ``.``, then the
input echoed one step late, and at the final step (input ``|``) the answer::

    step    0  1  2  3  4  5
    input   o  r  1  0  =  |
    output  .  o  r  1  0  1      <- answer of OR(1, 0)

So output[0] is ``.``, output[t] = input[t-1] for 0 < t < L-1 (the ``=`` is
never echoed) and output[L-1] is the answer. This is exactly the layout of the
paper's data file (checked on all 10,000 examples).

Scoring (``score``): ``"all"`` (default) scores every step's output symbol, as
the paper does (its F1 is over all output symbols, echo included);
``"answer"`` scores only the answer step. Either way the first metric,
``answer_error``, is 1 when the answer symbol is wrong (whole-answer accuracy
= 1 - its mean), independent of which steps the loss scores.

Data (``source``): the paper's data set (``data_path``, default the
packaged ``mann-rl-logic/logic.dataset.json.xz``, 9,500 train / 500
validation) is used when ``"file"``, or when ``"auto"`` (default) and the file
exists; training batches are drawn from its train split and ``eval_batches``
is its validation split. Note: every validation expression also occurs in the
train split (the file holds only 459 distinct expressions), so its
"validation" measures fit, not generalisation; for a true held-out test use
``source="generator"`` or ``sample(..., length=L)`` beyond the training
lengths. With ``"generator"`` (or ``"auto"`` without the file) training
batches are freshly generated and the held-out set is ``heldout_size``
expressions from a fixed seed.

The generator follows the file's distribution: operator uniform over
and/or/xor; for and/or the operand count is uniform in
[min_operands, max_operands] and the answer is 0 or 1 with equal
probability, with the answer-deciding case made hard: AND = 1 has all ones,
AND = 0 all ones but one zero at a uniform position (OR mirrored); xor's two
operands are uniform bits.
"""

import json
from pathlib import Path
from typing import Literal

import numpy as np

from mannlab.tasks.base import Batch
from mannlab.tasks.classes import class_loss, last_step_error
from mannlab.tasks.seqdata import (
    DataError,
    Example,
    SymbolSequenceTask,
    data_file,
    make_example,
    read_text,
)

SYMBOLS = ("a", "n", "d", "o", "r", "x", "0", "1", "=", ".", "|")
INDEX = {s: i for i, s in enumerate(SYMBOLS)}
OPERATORS = ("and", "or", "xor")
DEFAULT_DATA = "mann-rl-logic/logic.dataset.json.xz"
"""The paper's data set, under the data directory (`seqdata.data_file`)."""
HELDOUT_SEED = 2025_01_17
TRAIN_EVAL_SEED = 2025_01_18


def evaluate(operator: str, operands: list[int]) -> int:
    if operator == "and":
        return int(all(operands))
    if operator == "or":
        return int(any(operands))
    if operator == "xor":
        if len(operands) != 2:
            raise ValueError(f"xor takes 2 operands, got {len(operands)}")
        return operands[0] ^ operands[1]
    raise ValueError(f"unknown operator {operator!r}")


def expression(operator: str, operands: list[int]) -> tuple[list[str], list[str]]:
    """Input and output symbol lists of one expression."""
    inp = list(operator) + [str(b) for b in operands] + ["=", "|"]
    out = ["."] + inp[:-2] + [str(evaluate(operator, operands))]
    return inp, out


def parse_expression(symbols: list[str]) -> tuple[str, list[int]]:
    """Inverse of `expression` on the input side: (operator, operands)."""
    text = "".join(symbols)
    for op in OPERATORS:
        if text.startswith(op) and text.endswith("=|"):
            bits = text[len(op):-2]
            if bits and set(bits) <= {"0", "1"}:
                return op, [int(c) for c in bits]
    raise ValueError(f"not a logic expression: {text!r}")


def generate(rng: np.random.Generator, min_operands: int = 2, max_operands: int = 20,
             operator: str | None = None, operands: int | None = None):
    """One random expression as (input symbols, output symbols); see module doc."""
    op = operator or OPERATORS[rng.integers(len(OPERATORS))]
    if op == "xor":
        bits = [int(b) for b in rng.integers(0, 2, size=2)]
        return expression(op, bits)
    n = operands if operands is not None else int(rng.integers(min_operands, max_operands + 1))
    if n < 1:
        raise ValueError(f"{op} needs at least one operand, got {n}")
    base = 1 if op == "and" else 0  # the value that leaves the answer undecided
    bits = [base] * n
    if rng.integers(0, 2):  # the deciding case: exactly one operand flips the answer
        bits[int(rng.integers(n))] = 1 - base
    return expression(op, bits)


def operators_of_length(length: int) -> list[str]:
    """The operators that make expressions of exactly `length` steps."""
    return [op for op in OPERATORS
            if (op == "xor" and length == 7) or (op != "xor" and length - len(op) - 2 >= 2)]


def generate_length(rng: np.random.Generator, length: int):
    """One random expression of exactly `length` steps (any operand count)."""
    feasible = operators_of_length(length)
    if not feasible:
        raise ValueError(f"logic: no expression has length {length} (minimum 6)")
    op = feasible[int(rng.integers(len(feasible)))]
    return generate(rng, operator=op, operands=length - len(op) - 2)


def load_dataset(path: str | Path) -> dict[str, list[tuple[list[str], list[str]]]]:
    """Read the paper's JSON data set (plain or .xz/.gz), checking every example.

    Returns ``{"train": [(input_symbols, output_symbols), ...], "validation": ...}``.
    """
    path = Path(path)
    try:
        raw = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON: {err}") from None
    if not (isinstance(raw, dict) and isinstance(raw.get("train"), list)
            and isinstance(raw.get("validation"), list)):
        raise DataError(f"{path}: expected an object with 'train' and 'validation' lists")
    out = {}
    for split in ("train", "validation"):
        rows = []
        for k, pair in enumerate(raw[split]):
            where = f"{path}: {split}[{k}]"
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(p, list | str) for p in pair)):
                raise DataError(f"{where}: expected [input_symbols, output_symbols]")
            inp, outp = list(pair[0]), list(pair[1])
            bad = [s for s in inp + outp if not isinstance(s, str) or s not in INDEX]
            if bad:
                raise DataError(f"{where}: unknown symbol {bad[0]!r} (symbols: "
                                f"{' '.join(SYMBOLS)})")
            if len(inp) != len(outp):
                raise DataError(f"{where}: input has {len(inp)} symbols, output {len(outp)}")
            if not inp:
                raise DataError(f"{where}: an empty expression")
            rows.append((inp, outp))
        if not rows:
            raise DataError(f"{path}: the {split} split is empty")
        out[split] = rows
    return out


class LogicTask(SymbolSequenceTask):
    metric_names = ("answer_error", "sequence_error", "symbol_error_rate", "errors", "cost")
    whole_metric = "answer_error"

    def __init__(self, data_path: str | None = None,
                 source: Literal["auto", "file", "generator"] = "auto",
                 min_operands: int = 2, max_operands: int = 20,
                 score: Literal["all", "answer"] = "all", length_buckets: int = 4,
                 heldout_size: int = 500):
        if not 2 <= min_operands <= max_operands:
            raise ValueError(f"logic: need 2 <= min_operands <= max_operands, got "
                             f"{min_operands}, {max_operands}")
        if score not in ("all", "answer"):
            raise ValueError(f"logic: score must be 'all' or 'answer', got {score!r}")
        self.min_operands, self.max_operands, self.score = min_operands, max_operands, score
        self.input_symbols = self.output_symbols = list(SYMBOLS)
        self.input_size = len(SYMBOLS)
        path = data_file(data_path, DEFAULT_DATA)
        if path.is_dir():
            raise DataError(f"logic: data_path {path} is a directory, not a data file")
        if source == "file" and not path.is_file():
            raise FileNotFoundError(f"logic: data file not found: {path}")
        self.source = "file" if source == "file" or (
            source == "auto" and path.is_file()) else "generator"
        if self.source == "file":
            data = load_dataset(path)
            self.data_path = path
            self.train_examples = [self._example(i, o) for i, o in data["train"]]
            self.heldout_examples = [self._example(i, o) for i, o in data["validation"]]
        else:
            self.data_path = None
            self.train_examples = self._generated(TRAIN_EVAL_SEED, heldout_size)
            self.heldout_examples = self._generated(HELDOUT_SEED, heldout_size)
        self._setup(length_buckets)

    def _example(self, inp: list[str], out: list[str]) -> Example:
        scored = np.ones(len(inp), np.float32)
        if self.score == "answer":
            scored[:-1] = 0.0
        return make_example([INDEX[s] for s in inp], [INDEX[s] for s in out], scored)

    def _generated(self, seed: int, size: int) -> list[Example]:
        rng = np.random.default_rng(seed)
        return [self._example(*generate(rng, self.min_operands, self.max_operands))
                for _ in range(size)]

    def has_length(self, length: int) -> bool:
        """Expressions are generated at any length from 6 steps."""
        return bool(operators_of_length(length))

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """Training batch: from the file's train split, or freshly generated.
        With `length`, freshly generated expressions of exactly that many steps
        (any operand count, for generalisation tests)."""
        if length is not None:
            return self.make_batch([self._example(*generate_length(rng, length))
                                    for _ in range(batch_size)], steps=length)
        if self.source == "file":
            return super().sample(rng, batch_size)
        return self.make_batch([self._example(*generate(rng, self.min_operands,
                                                        self.max_operands))
                                for _ in range(batch_size)])

    def loss(self, ys, batch: Batch):
        loss, metrics = class_loss(ys, batch.targets, batch.loss_mask)
        metrics["answer_error"] = last_step_error(ys, batch.targets, batch.step_mask)
        return loss, metrics
