"""Shared machinery of the symbol-sequence tasks (logic, POS, sentences).

Each example is an `Example`: a sequence of input ids, a sequence of target
class ids of the same length (one symbol in and one out per step) and a 0/1
score per step. `SymbolSequenceTask` turns lists of examples into padded,
time-major batches (length-bucketed so few programs compile), samples training
batches, and provides the deterministic evaluation sets:

* ``eval_batches(batch_size)``: the held-out split, in a fixed order;
* ``train_eval_batches(batch_size, limit=None)``: the training split (the
  paper reports F1 on the training set), in a fixed order;
* ``heldout(size)``: the first `size` held-out examples (the trainer's hook).

Data files (`data_file`): a path given in the config is used as given
(relative to the working directory); without one, a task reads its standard
data set from ``$MANNLAB_DATA_DIR`` if that is set, else from the copy that
ships inside the package (``mannlab/data/``: UD English EWT, CC BY-SA 4.0;
the MANN-RL logic set, MIT; each with its licence). Nothing walks up
directories.
"""

import gzip
import lzma
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from mannlab.tasks.base import Batch, bucket_edges, pad_length
from mannlab.tasks.classes import class_loss, symbol_scores

PACKAGED_DATA = Path(__file__).resolve().parent.parent / "data"
"""The data sets that ship with mannlab."""


def data_file(path: str | os.PathLike | None, standard: str) -> Path:
    """The file to read: `path` if given (as given, ``~`` expanded), else the
    standard data set's file `standard` (a name such as
    ``ud-english-ewt/en_ewt-ud-train.conllu.xz``) under ``$MANNLAB_DATA_DIR``
    if set, else under the packaged data. Existence is checked by the reader."""
    if path is not None:
        return Path(path).expanduser()
    root = os.environ.get("MANNLAB_DATA_DIR")
    return (Path(root).expanduser() if root else PACKAGED_DATA) / standard


class DataError(ValueError):
    """A data file that cannot be read or is malformed; the message names the
    file, and the line where there is one."""


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a data file for reading bytes, transparently decompressing ``.xz``
    and ``.gz`` (read it with `iter_lines` or `read_text`, which name the file
    in their errors)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        if path.suffix == ".xz":
            return lzma.open(path, "rb")
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


READ_ERRORS = (EOFError, lzma.LZMAError, zlib.error, OSError)
"""What reading a (compressed) data file raises when the file is damaged or
unreadable: a truncated .xz or .gz (EOFError), corrupt compressed data
(LZMAError, zlib.error, gzip.BadGzipFile), an I/O error."""


def read_failure(path: Path, err: BaseException) -> DataError:
    """A one-line DataError naming `path` for one of `READ_ERRORS`."""
    if isinstance(err, EOFError):
        return DataError(f"{path}: truncated: the compressed data end before the end of the "
                         f"stream (an interrupted download or copy?)")
    if isinstance(err, OSError) and err.strerror:
        return DataError(f"{path}: cannot read ({err.strerror})")
    kind = "corrupt .xz data" if isinstance(err, lzma.LZMAError) else "corrupt data"
    return DataError(f"{path}: {kind} ({err})")


def _decode(path: Path, data: bytes, lineno: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte 0x{data[err.start]:02x} at "
                        f"column {err.start + 1})") from None


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number from 1, line with its line ending) of a UTF-8 text file,
    plain, ``.xz`` or ``.gz``, a leading byte-order mark dropped. Errors are
    one line naming the file (and line): `DataError`, or FileNotFoundError."""
    path = Path(path)
    with open_binary(path) as f:
        lineno = 0
        while True:
            try:
                raw = f.readline()
            except READ_ERRORS as err:
                raise read_failure(path, err) from None
            if not raw:
                return
            lineno += 1
            line = _decode(path, raw, lineno)
            yield lineno, line.removeprefix("\ufeff") if lineno == 1 else line


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a UTF-8 file, plain, ``.xz`` or ``.gz`` (errors as
    `iter_lines`'s)."""
    return "".join(line for _, line in iter_lines(path))


class Example(NamedTuple):
    """One sequence: ``inputs`` and ``targets`` [L] int ids, ``scored`` [L] 0/1."""

    inputs: np.ndarray
    targets: np.ndarray
    scored: np.ndarray


def make_example(inputs, targets, scored=None) -> Example:
    inputs = np.asarray(inputs, np.int32)
    targets = np.asarray(targets, np.int32)
    if inputs.shape != targets.shape or inputs.ndim != 1:
        raise ValueError(f"inputs and targets must be 1-D of equal length, got {inputs.shape} "
                         f"and {targets.shape}")
    scored = np.ones(len(inputs), np.float32) if scored is None else np.asarray(scored,
                                                                                np.float32)
    return Example(inputs, targets, scored)


def layout(examples: list[Example], steps: int, one_hot: int | None) -> Batch:
    """Pad `examples` to `steps` time steps as a time-major `Batch`.

    Args:
      one_hot: input vocabulary size for one-hot float32 inputs [T, B, V];
        None for int32 token ids [T, B] (tasks with an ``embedding``, whose
        models embed the ids, see `mannlab.models.embedded`).
    """
    B = len(examples)
    ids = np.zeros((steps, B), np.int32)
    targets = np.zeros((steps, B), np.int32)
    loss_mask = np.zeros((steps, B), np.float32)
    step_mask = np.zeros((steps, B), bool)
    for b, ex in enumerate(examples):
        L = len(ex.inputs)
        ids[:L, b] = ex.inputs
        targets[:L, b] = ex.targets
        loss_mask[:L, b] = ex.scored
        step_mask[:L, b] = True
    if one_hot is None:
        inputs = ids
    else:
        inputs = np.zeros((steps, B, one_hot), np.float32)
        inputs[np.arange(steps)[:, None], np.arange(B)[None, :], ids] = 1.0
        inputs *= step_mask[..., None]
    return Batch(inputs, targets, loss_mask, step_mask)


class SymbolSequenceTask:
    """Base of tasks whose data are lists of `Example`s.

    A subclass sets ``train_examples`` and ``heldout_examples`` (lists),
    ``input_symbols`` / ``output_symbols`` (the vocabularies, index = id),
    ``one_hot`` (True: one-hot inputs; False: token ids), ``metric_names``,
    then calls `_setup(length_buckets)`.
    """

    train_examples: list[Example]
    heldout_examples: list[Example]
    input_symbols: list[str]
    output_symbols: list[str]
    one_hot: bool = True
    embedding = None
    inputs_fingerprint: dict | None = None
    heldout_split = "heldout"
    metric_names: tuple[str, ...] = ("sequence_error", "symbol_error_rate", "errors", "cost")

    def _setup(self, length_buckets: int) -> None:
        if not self.train_examples:
            raise ValueError(f"{type(self).__name__}: the training split is empty")
        if not self.heldout_examples:  # the subclasses name the file before this
            raise ValueError(f"{type(self).__name__}: the held-out split is empty")
        lengths = [len(e.inputs) for e in self.train_examples + self.heldout_examples]
        self.min_length, self.max_length = min(lengths), max(lengths)
        self.edges = bucket_edges(self.min_length, self.max_length, length_buckets)
        self.output_size = len(self.output_symbols)
        self._by_length: dict[int, list[int]] | None = None

    @property
    def max_time_steps(self) -> int:
        """The most time steps a training batch has (its longest bucket)."""
        return self.edges[-1]

    # ------------------------------------------------------------ batches
    @property
    def _in_size(self) -> int | None:
        return len(self.input_symbols) if self.one_hot else None

    def make_batch(self, examples: list[Example], steps: int | None = None) -> Batch:
        """Lay out examples, padded to their length bucket (or to `steps`)."""
        longest = max(len(e.inputs) for e in examples)
        return layout(examples, steps or pad_length(longest, self.edges), self._in_size)

    def _of_length(self, length: int) -> list[int]:
        """Indices of the training sequences of exactly `length` steps."""
        if self._by_length is None:
            self._by_length = {}
            for i, e in enumerate(self.train_examples):
                self._by_length.setdefault(len(e.inputs), []).append(i)
        return self._by_length.get(length, [])

    def has_length(self, length: int) -> bool:
        """Whether the training split has a sequence of exactly `length` steps."""
        return bool(self._of_length(length))

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A batch drawn uniformly (with replacement) from the training split;
        with `length`, only from training sequences of exactly that many steps."""
        if length is None:
            idx = rng.integers(0, len(self.train_examples), size=batch_size)
            return self.make_batch([self.train_examples[i] for i in idx])
        pool = self._of_length(length)
        if not pool:
            raise ValueError(f"{type(self).__name__}: no training sequence of length {length} "
                             f"(lengths {self.min_length}..{self.max_length})")
        idx = rng.choice(pool, size=batch_size)
        return self.make_batch([self.train_examples[i] for i in idx], steps=length)

    def _fixed_batches(self, examples: list[Example], batch_size: int) -> list[Batch]:
        """Deterministic batches: examples sorted (stably) by length, then chunked,
        so each batch pads little. Every example appears exactly once."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].inputs))
        return [self.make_batch([examples[i] for i in order[s:s + batch_size]])
                for s in range(0, len(order), batch_size)]

    def eval_batches(self, batch_size: int = 256) -> list[Batch]:
        """The held-out split as fixed batches (same for every run and seed)."""
        return self._fixed_batches(self.heldout_examples, batch_size)

    def train_eval_batches(self, batch_size: int = 256, limit: int | None = None) -> list[Batch]:
        """The training split (its first `limit` examples) as fixed batches."""
        examples = self.train_examples[:limit] if limit else self.train_examples
        return self._fixed_batches(examples, batch_size)

    def heldout(self, size: int | None = None, chunk: int = 256) -> list[Batch]:
        """The trainer's held-out set: the first `size` held-out examples (all if
        None or if fewer), as fixed batches of at most `chunk`."""
        return self._fixed_batches(self.heldout_examples[:size], chunk)

    # ------------------------------------------------------------ metrics
    def loss(self, ys, batch: Batch):
        return class_loss(ys, batch.targets, batch.loss_mask)

    whole_metric = "sequence_error"
    """The per-sequence metric whose complement is the whole-answer accuracy."""

    def splits(self, train_limit: int | None = None) -> dict[str, list[Batch]]:
        """The fixed splits `scores` reports on: the training split (its first
        `train_limit` examples; the MANN-RL paper reports this one) and the
        held-out split."""
        return {"train": self.train_eval_batches(256, train_limit),
                "heldout": self.eval_batches(256)}

    def scores(self, outputs: list[tuple[np.ndarray, Batch]]) -> dict[str, float]:
        """Micro and weighted P, R, F1 and accuracy over the scored output
        symbols (`classes.symbol_scores`), the whole-answer accuracy and the
        number of sequences, of ``(ys [T, B, O], batch)`` pairs."""
        out = symbol_scores(outputs)
        whole = np.concatenate([1.0 - np.asarray(self.loss(ys, b)[1][self.whole_metric])
                                for ys, b in outputs])
        return {**out, "whole_accuracy": float(whole.mean()), "sequences": int(whole.size)}

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        """Reference predictors' `scores` per split, by name (none here)."""
        return {}
