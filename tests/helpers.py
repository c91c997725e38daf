"""Tiny configurations, readers and checks shared by the tests."""

import shutil
import struct
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

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


def event_records(seed_dir):
    """Every TensorBoard event in a seed's tfevents files, in order (TFRecord
    framing: length, its CRC, the Event proto, its CRC)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(seed_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
            i += 12 + n + 4
    return events


def check_bit_metrics(task, batch) -> None:
    """A bit task's loss and metrics on its own targets: confident right
    logits cost ~0 and get no bit wrong; confident wrong ones get every scored
    bit wrong."""
    perfect = jnp.where(jnp.asarray(batch.targets) > 0, 20.0, -20.0)
    loss, metrics = task.loss(perfect, batch)
    assert float(loss) < 1e-3 and np.all(np.asarray(metrics["bits_wrong"]) == 0)
    _, metrics = task.loss(-perfect, batch)
    np.testing.assert_allclose(metrics["bits_wrong"],
                               batch.loss_mask.sum(0) * batch.targets.shape[-1])


def chromium() -> str:
    """The headless browser the browser tests drive (Debian's chromium)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    pytest.fail("headless Chromium is needed for this test: install it with "
                "`apt-get install -y chromium` (scripts/test.sh does)")
