"""Tiny configurations shared by the trainer and CLI tests."""

from mannlab.config import parse_config


def tiny_config(**train):
    return parse_config({
        "task": {"name": "copy", "bits": 4, "min_length": 1, "max_length": 3,
                 "length_buckets": 1},
        "model": {"name": "ntm", "controller_size": 16, "memory_size": 8, "memory_width": 4},
        "train": {"max_steps": 40, "eval_every": 20, "eval_size": 16, "log_every": 10,
                  "checkpoint_every": 20, "window": 10, "converge_at": None, **train},
        "seed": 3,
    })
