"""Optimisers: the NTM paper's RMSprop (lr 1e-4, momentum 0.9, decay 0.95,
gradients clipped element-wise to [-10, 10]) or Adam; optionally the global
norm clipped too (``train.clip_norm``, as the Chomsky-hierarchy paper does)."""

import optax

from mannlab.config import TrainConfig


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    if cfg.optimizer == "rmsprop":
        opt = optax.rmsprop(cfg.learning_rate, decay=cfg.decay, momentum=cfg.momentum, eps=1e-8)
    else:
        opt = optax.adam(cfg.learning_rate)
    clips = [optax.clip(cfg.clip_value)]
    if cfg.clip_norm is not None:
        clips.append(optax.clip_by_global_norm(cfg.clip_norm))
    return optax.chain(*clips, opt)
