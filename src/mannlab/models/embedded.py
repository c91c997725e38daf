"""A learned word embedding in front of any sequence model.

Tasks over a large word vocabulary (POS tagging) emit int32 token ids
``xs`` [T, B] rather than one-hot vectors, and describe their embedding with
an `Embedding` (``task.embedding``; None for vector inputs). Such a
task's model is ``Embedded(inner, weights)``: ids are looked up in an
embedding table [vocab_size, D] and the vectors [T, B, D] go to ``inner``, an
ordinary `SequenceModel` built with ``input_size = D``. The embedding is
trained with the rest of the model unless ``trainable=False``.

Models are built with `wrap_for_task(model_builder, task, key)`, which
returns ``model_builder(task.input_size, task.output_size, key)`` for
vector tasks and an `Embedded` model for tasks with an embedding. The
table starts random (normal, std 1/sqrt(D)) or, when the embedding names a
``vectors_path``, from a GloVe / word2vec text file (see `load_word_vectors`).
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mannlab.models.base import SequenceModel


class Embedding(NamedTuple):
    """How a task over token ids wants its inputs embedded.

    vocab: the token of each id [V]; size: the embedding width D (unless
    `vectors_path` gives pretrained vectors, whose width wins); lowercase:
    match the vectors' words lowercased; freeze: keep the table fixed.
    """

    vocab: list[str]
    size: int
    vectors_path: Path | None = None
    lowercase: bool = False
    freeze: bool = False


class Embedded(SequenceModel):
    """Token ids -> embedding -> `inner` model."""

    weight: jnp.ndarray  # [vocab_size, D]
    inner: SequenceModel
    trainable: bool = eqx.field(static=True, default=True)

    def __init__(self, inner: SequenceModel, weight, trainable: bool = True):
        self.inner = inner
        self.weight = jnp.asarray(weight, jnp.float32)
        self.trainable = trainable

    def embed(self, ids: jnp.ndarray) -> jnp.ndarray:
        w = self.weight if self.trainable else jax.lax.stop_gradient(self.weight)
        return jnp.take(w, ids.astype(jnp.int32), axis=0)

    def init_state(self, batch: int) -> Any:
        return self.inner.init_state(batch)

    def memory_matrix(self, state: Any) -> jnp.ndarray | None:
        return self.inner.memory_matrix(state)

    def step(self, state: Any, x: jnp.ndarray):
        """x [B] int ids -> inner step on [B, D] vectors."""
        return self.inner.step(state, self.embed(x))

    def __call__(self, xs: jnp.ndarray, state: Any, mask: jnp.ndarray | None = None,
                 with_trace: bool = False):
        """xs [T, B] int ids; otherwise as `SequenceModel.__call__`."""
        if xs.ndim != 2:
            raise ValueError(f"Embedded expects token ids [T, B], got shape {xs.shape}")
        return self.inner(self.embed(xs), state, mask, with_trace)


def load_word_vectors(path: str | os.PathLike, vocab: Sequence[str], *,
                      rng: np.random.Generator | None = None,
                      lowercase: bool = False) -> tuple[np.ndarray, int]:
    """An embedding table for `vocab` from a word-vectors text file.

    Format: one word per line followed by its D values, separated by
    whitespace (GloVe's format; word2vec's text format too, whose first line
    ``count dim`` is skipped). Every line must have the same D; a line with a
    different count or a non-number raises ValueError naming file and line.
    Words of `vocab` absent from the file (and ``<pad>``/``<unk>``) get random
    normal rows scaled like the file's vectors. With `lowercase`, a file word
    also fills the row of its lowercased form if that has no exact entry.

    Returns:
      (table [len(vocab), D] float32, number of vocab words found in the file).
    """
    path = Path(path)
    index = {w: i for i, w in enumerate(vocab)}
    rows: dict[int, np.ndarray] = {}
    exact: set[int] = set()
    dim = None
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
                if dim == 0:
                    raise ValueError(f"{path}:{lineno}: word {word!r} has no vector values")
            if len(values) != dim:
                raise ValueError(f"{path}:{lineno}: expected {dim} values after the word "
                                 f"(as on the first vector line), got {len(values)}")
            keys = [(word, True)] + ([(word.lower(), False)] if lowercase else [])
            hit = [(index[w], ex) for w, ex in keys if w in index]
            if not hit:
                continue
            try:
                vec = np.array([float(v) for v in values], np.float32)
            except ValueError:
                bad = next(v for v in values if not _is_float(v))
                raise ValueError(f"{path}:{lineno}: not a number: {bad!r}") from None
            for i, is_exact in hit:
                if is_exact or i not in exact:
                    rows[i] = vec
                    if is_exact:
                        exact.add(i)
    if dim is None:
        raise ValueError(f"{path}: no word vectors in the file")
    rng = rng or np.random.default_rng(0)
    scale = float(np.std(np.stack(list(rows.values())))) if rows else 1.0 / np.sqrt(dim)
    table = rng.normal(0.0, scale or 1.0 / np.sqrt(dim), (len(vocab), dim)).astype(np.float32)
    for i, vec in rows.items():
        table[i] = vec
    return table, len(rows)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def wrap_for_task(model_builder: Callable[[int, int, jax.Array], SequenceModel], task,
                  key: jax.Array) -> SequenceModel:
    """Build the model a task needs.

    Args:
      model_builder: ``(input_size, output_size, key) -> model``, e.g.
        ``config.model.build``.
      task: a task (`mannlab.tasks.base.Task`): its ``embedding`` (an
        `Embedding`, or None for vector inputs) decides whether the model is
        wrapped in `Embedded`.
      key: PRNG key.
    """
    spec: Embedding | None = task.embedding
    if spec is None:
        return model_builder(task.input_size, task.output_size, key)
    k_embed, k_inner = jax.random.split(key)
    if spec.vectors_path:
        seed = int(jax.random.randint(k_embed, (), 0, 2**31 - 1))
        table, _ = load_word_vectors(spec.vectors_path, spec.vocab,
                                     rng=np.random.default_rng(seed), lowercase=spec.lowercase)
    else:
        table = jax.random.normal(k_embed, (len(spec.vocab), spec.size)) / np.sqrt(spec.size)
    inner = model_builder(table.shape[1], task.output_size, k_inner)
    return Embedded(inner, table, trainable=not spec.freeze)
