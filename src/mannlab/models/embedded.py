"""A learned word embedding in front of any sequence model.

Tasks over a large word vocabulary (POS tagging) emit int32 token ids
``xs`` [T, B] rather than one-hot vectors, and describe their embedding with
an `Embedding` (``task.embedding``; None for vector inputs). Such a
task's model is ``Embedded(inner, weights)``: ids are looked up in an
embedding table [vocab_size, D] and the vectors [T, B, D] go to ``inner``, an
ordinary `SequenceModel` built with ``input_size = D``. The embedding is
trained with the rest of the model. (Frozen pretrained vectors are not an
embedding: a task looks them up itself and gives vectors, `mannlab.tasks.vectors`.)

Models are built with `wrap_for_task(model_builder, task, key)`, which
returns ``model_builder(task.input_size, task.output_size, key)`` for
vector tasks and an `Embedded` model for tasks with an embedding. The
table starts random normal with unit variance per dimension.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mannlab.models.base import SequenceModel


class Embedding(NamedTuple):
    """How a task over token ids wants its inputs embedded: vocab, the token
    of each id [V]; size, the embedding width D."""

    vocab: list[str]
    size: int


class Embedded(SequenceModel):
    """Token ids -> embedding -> `inner` model."""

    weight: jnp.ndarray  # [vocab_size, D]
    inner: SequenceModel

    def __init__(self, inner: SequenceModel, weight):
        self.inner = inner
        self.weight = jnp.asarray(weight, jnp.float32)

    def embed(self, ids: jnp.ndarray) -> jnp.ndarray:
        """ids [...] int -> vectors [..., D]."""
        return jnp.take(self.weight, ids.astype(jnp.int32), axis=0)

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
    # unit variance per dimension, so that the current word is as loud as the
    # other inputs a model concatenates with it (a memory read, a state)
    table = jax.random.normal(k_embed, (len(spec.vocab), spec.size))
    return Embedded(model_builder(spec.size, task.output_size, k_inner), table)
