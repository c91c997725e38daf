"""One trainer per seed directory: an OS file lock held while a seed trains.

The lock is `fcntl.flock` on ``seed-K/.lock`` (the holder's PID written
inside): the kernel releases it whenever the holder exits, however it exits
(kill -9 included), so a stale lock cannot outlive its process.
"""

import fcntl
import os
from pathlib import Path

from mannlab.config import ConfigError

LOCK_FILE = ".lock"


class SeedLock:
    """Hold the lock of `seed_dir` until `release` (or the process ends).

    Raises:
      ConfigError naming the directory and the holder's PID if another
      process holds it.
    """

    def __init__(self, seed_dir: Path):
        self.path = Path(seed_dir) / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise ConfigError(f"{seed_dir}: being trained by process {holder} (it holds "
                              f"{self.path}); wait for it or stop it first") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
