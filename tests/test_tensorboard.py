"""`mannlab train` prints `tensorboard --logdir RUN`; that command works on a
fresh install and shows the run.

A tiny run is trained in-process, the `tensorboard` program installed next to
this Python (a dependency of mannlab, not something a newcomer installs by
hand) is started on it on a free loopback port, its HTTP API must list exactly
the scalar and image tags written to the run's event files (and serve a curve
and an image), and headless Chromium's screenshot of its scalars page must
show the run's curves, not a blank page.

Nothing is written outside the test's directory: TensorBoard and Chromium get
their own HOME, TMPDIR and XDG directories there. CI installs Chromium with
``apt-get install -y chromium`` (Debian); if it is missing this test fails
rather than skips.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from helpers import chromium, event_records, tiny_config
from mannlab.api import make_trainer
from mannlab.training.rundir import create_run

pytestmark = pytest.mark.slow  # trains a tiny run, starts TensorBoard and Chromium: ~20 s

STARTUP_TIMEOUT = 120.0
"""Seconds TensorBoard may take to come up and load the run (it takes ~1 s)."""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps",
                  "--disable-extensions", "--mute-audio", "--hide-scrollbars"]
WIDTH, HEIGHT = 1400, 1000


def private_env(root: Path, tmpdir: bool = True) -> dict:
    """The environment with HOME, the XDG directories (Chromium's crash
    reports, fontconfig's cache) and, if `tmpdir`, TMPDIR (TensorBoard's
    .tensorboard-info) under `root`, so nothing lands in ~/.cache, ~/.config
    or /tmp. (Chromium keeps the system TMPDIR: its socket path there must be
    short; it removes it on exit.)"""
    dirs = {"HOME": "home", "XDG_CACHE_HOME": "cache", "XDG_CONFIG_HOME": "config",
            "XDG_DATA_HOME": "data", **({"TMPDIR": "tmp"} if tmpdir else {})}
    env = dict(os.environ)
    for var, name in dirs.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / name)
    return env


def written_tags(seed_dir: Path) -> tuple[set[str], set[str]]:
    """The scalar and the image tags in a seed's event files."""
    scalars, images = set(), set()
    for event in event_records(seed_dir):
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                scalars.add(value.tag)
            elif kind == "image":
                images.add(value.tag)
    return scalars, images


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboard_program() -> Path:
    program = Path(sys.executable).parent / "tensorboard"
    if not program.exists():
        pytest.fail(f"no {program}: `pip install -e .` installs TensorBoard with mannlab")
    return program


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


def wait_for_tags(server, base: str, log: Path, run: str, scalars: set[str]) -> dict:
    """TensorBoard's scalar tags once it serves all of `scalars` for `run`."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    tags = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}:\n{log.read_text()}")
        try:
            tags = get(f"{base}/data/plugin/scalars/tags")
            if scalars <= set(tags.get(run, {})):
                return tags
        except (OSError, ValueError):  # not listening yet, or a partial answer
            pass
        time.sleep(0.25)
    pytest.fail(f"tensorboard did not list {sorted(scalars)} for {run} within "
                f"{STARTUP_TIMEOUT:.0f} s (last answer {tags}):\n{log.read_text()}")


def stop(server) -> None:
    """TERM TensorBoard's process group (it and its data server), KILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 20)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            pass
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_tensorboard_lists_and_draws_a_finished_run(tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    config = tiny_config()
    assert config.train.log_images
    create_run(run, config, [3])
    make_trainer(run, config, [3]).train()
    scalars, images = written_tags(run / "seed-3")
    assert {"train/loss", "train/bits_wrong", "heldout/bits_wrong", "heldout/cost"} <= scalars
    assert images and all(t.startswith("sequence/") for t in images), images
    assert {"sequence/input", "sequence/output"} <= images

    env = private_env(tmp_path / "env")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "tensorboard.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(tensorboard_program()), "--logdir", str(run), "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=tmp_path, start_new_session=True)
    try:
        # 1. the API: the run, exactly its tags, a curve and an image
        scalar_tags = wait_for_tags(server, base, log, "seed-3", scalars)
        assert get(f"{base}/data/runs") == ["seed-3"]
        assert set(scalar_tags) == {"seed-3"}
        assert set(scalar_tags["seed-3"]) == scalars
        image_tags = get(f"{base}/data/plugin/images/tags")
        assert set(image_tags) == {"seed-3"}
        assert set(image_tags["seed-3"]) == images

        loss = get(f"{base}/data/plugin/scalars/scalars?run=seed-3&tag=train/loss")
        records = [json.loads(line) for line in
                   (run / "seed-3/metrics.jsonl").read_text().splitlines()]
        train = [r for r in records if r["split"] == "train"]
        assert [step for _, step, _ in loss] == [r["step"] for r in train]
        np.testing.assert_allclose([v for _, _, v in loss], [r["loss"] for r in train],
                                   rtol=1e-6)

        shots = get(f"{base}/data/plugin/images/images?run=seed-3&tag=sequence/input&sample=0")
        assert [s["step"] for s in shots] == [20, 40]  # one per held-out evaluation
        png = get(f"{base}/data/plugin/images/individualImage?{shots[-1]['query']}")
        picture = np.asarray(Image.open(BytesIO(png)).convert("RGB"))
        assert picture.ndim == 3 and min(picture.shape[:2]) >= 8
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 1

        # 2. the page: Chromium draws the scalars dashboard with the run's curves
        shot = tmp_path / "scalars.png"
        done = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
             "--virtual-time-budget=15000", f"{base}/#scalars"],
            check=False, capture_output=True, text=True, timeout=180,
            env=private_env(tmp_path / "env", tmpdir=False), cwd=tmp_path)
        assert shot.exists(), f"no screenshot; chromium said:\n{done.stderr[-3000:]}"
    finally:
        stop(server)

    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 64, "screenshot has a handful of colours"
    assert rgb.mean(-1).std() > 10, "screenshot is (nearly) one colour"
    # The run's curves: warm, saturated pixels (TensorBoard draws the first run
    # in orange-red) in the charts, i.e. below the orange header bar and right
    # of the settings sidebar, which also use orange.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    curve = (r > 200) & (r - g > 80) & (r - b > 80)
    assert curve[100:, 420:].sum() > 50, "no curve of the run in the scalars page"
