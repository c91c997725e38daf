"""A seed's host-side state and its records, as three small pieces.

* `SeedProgress`: everything besides the arrays that resuming a seed needs
  (step, clock, data RNG, sliding windows, convergence, last evaluation); it
  goes into the checkpoint as JSON (`to_json`, `restore`).
* `RecordWriter`: appends a seed's records to ``metrics.jsonl`` and its
  numbers to the seed's TensorBoard run.
* `truncate_records`: after a crash, drops what a stopped process logged
  past the point where training resumes.
"""

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter

from mannlab.training.curriculum import GrowingLength
from mannlab.training.files import RunFileError, write_text_atomic

METRICS_FILE = "metrics.jsonl"


@dataclass
class SeedProgress:
    """Host-side state of one seed, besides its arrays.

    `windows` hold the last `window` training values of each metric (the
    ``<metric>_window`` averages of the records and the progress line);
    `curriculum` is the seed's growing length range (``train.curriculum:
    grow``), None when the task samples its own lengths.
    """

    seed: int
    rng: np.random.Generator
    window: int
    step: int = 0
    seconds: float = 0.0
    converged: dict | None = None
    last_eval: dict | None = None
    windows: dict = field(default_factory=dict)
    diverged: dict | None = None
    curriculum: GrowingLength | None = None

    @property
    def training(self) -> bool:
        """Whether the seed still trains (it stops at convergence or divergence)."""
        return self.converged is None and self.diverged is None

    def push(self, name: str, value: float) -> None:
        self.windows.setdefault(name, deque(maxlen=self.window)).append(value)

    def average(self, name: str) -> float:
        values = self.windows.get(name)
        return float(np.mean(values)) if values else float("nan")

    def to_json(self) -> dict:
        return {"seed": self.seed, "step": self.step, "seconds": self.seconds,
                "rng": self.rng.bit_generator.state, "converged": self.converged,
                "last_eval": self.last_eval,
                "windows": {k: list(v) for k, v in self.windows.items()},
                **({"curriculum": self.curriculum.to_json()} if self.curriculum else {})}

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint's JSON `state`."""
        self.step, self.seconds = state["step"], state["seconds"]
        self.rng.bit_generator.state = state["rng"]
        self.converged, self.last_eval = state["converged"], state["last_eval"]
        self.windows = {k: deque(v, maxlen=self.window) for k, v in state["windows"].items()}
        if self.curriculum is not None and "curriculum" in state:
            self.curriculum.restore(state["curriculum"])


def _step_of(line: str) -> int | None:
    """The step of a metrics.jsonl line, None if the line is not a record."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def read_records(seed_dir: Path) -> list[dict]:
    """The records of a seed's metrics.jsonl (half-written lines skipped)."""
    metrics = seed_dir / METRICS_FILE
    if not metrics.exists():
        return []
    return [json.loads(line) for line in metrics.read_text().splitlines()
            if _step_of(line) is not None]


def truncate_records(seed_dir: Path, step: int) -> None:
    """Keep the metrics.jsonl records up to `step`; lines a stopped process
    left half-written go too. The file is rewritten atomically, and only if
    something is dropped."""
    metrics = seed_dir / METRICS_FILE
    if not metrics.exists():
        return
    lines = metrics.read_text().splitlines()
    kept = [line for line in lines if (n := _step_of(line)) is not None and n <= step]
    if len(kept) < len(lines):
        write_text_atomic(metrics, "".join(line + "\n" for line in kept))


class RecordWriter:
    """Writes one seed's records: ``metrics.jsonl`` and a TensorBoard run in
    the seed's directory.

    Args:
      seed_dir: the seed's directory.
      start_step: the step training (re)starts from: records logged past it
        by an earlier, stopped process are dropped (`truncate_records`) and
        hidden from TensorBoard (its ``purge_step``). If the seed's
        TensorBoard events were lost (no event file with content, as after a
        kill before its first flush), the kept records are written to
        TensorBoard again.
    """

    def __init__(self, seed_dir: Path, start_step: int):
        self.dir = Path(seed_dir)
        self._purge_step = start_step + 1
        self._tensorboard = None
        truncate_records(self.dir, start_step)
        events = [f.stat().st_size for f in self.dir.glob("events.out.tfevents.*")]
        if start_step > 0 and not any(events):
            for record in read_records(self.dir):
                self._scalars(record)

    @property
    def tensorboard(self) -> SummaryWriter:
        """The seed's TensorBoard writer, opened on first use."""
        if self._tensorboard is None:
            # tensorboardX names files by the second and opens them "wb": a suffix
            # in nanoseconds keeps two writers of one second apart, in order
            self._tensorboard = SummaryWriter(logdir=str(self.dir), flush_secs=10,
                                              purge_step=self._purge_step,
                                              filename_suffix=f".{time.time_ns()}")
        return self._tensorboard

    def log(self, record: dict) -> None:
        """Append `record` to metrics.jsonl; its numbers go to TensorBoard as
        ``<split>/<name>`` at ``record["step"]``."""
        path = self.dir / METRICS_FILE
        try:
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            raise RunFileError(f"{path}: cannot write ({err.strerror})") from None
        self._scalars(record)

    def _scalars(self, record: dict) -> None:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k not in ("step", "split"):
                self.tensorboard.add_scalar(f"{record['split']}/{k}", v, record["step"])

    def flush(self) -> None:
        """Write TensorBoard's pending events to disk (at every checkpoint)."""
        if self._tensorboard is None:
            return
        try:
            self._tensorboard.flush()
        except OSError as err:
            raise RunFileError(f"{self.dir}: cannot write TensorBoard events "
                               f"({err.strerror or type(err).__name__})") from None

    def close(self) -> None:
        """Close the TensorBoard writer. Events it cannot write any more (a full
        disk) are given up: metrics.jsonl holds every record, and a resumed
        seed rebuilds lost events from it."""
        if self._tensorboard is not None:
            writer, self._tensorboard = self._tensorboard, None
            try:
                writer.close()
            except OSError:
                pass
