"""training/optimizer.py: the element-wise clip, then the optional global-norm clip."""

import jax.numpy as jnp
import numpy as np

from mannlab.config import TrainConfig
from mannlab.training.optimizer import make_optimizer


def _updates(cfg: TrainConfig, grads: list) -> list:
    opt = make_optimizer(cfg)
    state = opt.init(grads[0])
    out = []
    for g in grads:
        u, state = opt.update(g, state)
        out.append(np.asarray(u))
    return out


def test_clip_norm_rescales_only_gradients_above_it():
    # A first gradient of norm 50 is cut to norm 1; a second of norm 0.5 is
    # left alone. Both optimisers are scale-invariant on the first step only,
    # so the second update shows whether the first gradient was rescaled.
    g1, g2 = jnp.array([30.0, 40.0]), jnp.array([0.3, -0.4])
    for name in ("adam", "rmsprop"):
        clipped = _updates(TrainConfig(optimizer=name, clip_value=100.0, clip_norm=1.0), [g1, g2])
        by_hand = _updates(TrainConfig(optimizer=name, clip_value=100.0), [g1 / 50.0, g2])
        unclipped = _updates(TrainConfig(optimizer=name, clip_value=100.0), [g1, g2])
        np.testing.assert_allclose(clipped[1], by_hand[1], rtol=1e-6)
        assert not np.allclose(clipped[1], unclipped[1], rtol=1e-3)


def test_clip_value_acts_element_wise_before_the_norm():
    g1, g2 = jnp.array([30.0, 0.5]), jnp.array([0.3, -0.4])
    clipped = _updates(TrainConfig(optimizer="adam", clip_value=1.0, clip_norm=1.0), [g1, g2])
    cut = jnp.array([1.0, 0.5])
    by_hand = _updates(TrainConfig(optimizer="adam", clip_value=100.0),
                       [cut / jnp.linalg.norm(cut), g2])
    np.testing.assert_allclose(clipped[1], by_hand[1], rtol=1e-6)
