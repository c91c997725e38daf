"""Writing a run's small files so that a crash or a full disk never leaves
one empty or half-written: the text goes to a temporary file beside the
target, is flushed to disk, and replaces the target in one rename. If any
of it fails, the temporary file is removed, the old file stays as it was,
and the error is one line naming the file and the cause (`RunFileError`,
a `ConfigError`, which the CLI reports as one line)."""

import os
import re
import uuid
from pathlib import Path

from mannlab.config import ConfigError


class RunFileError(ConfigError):
    """A run file that could not be written; the message names it and the cause."""


TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")
"""The name of a file `write_text_atomic` is writing (``.<name>.<hex>.tmp``)."""


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path`'s contents with `text` (UTF-8) atomically: either the
    old contents or the new ones, never a mixture or an empty file. Raises
    `RunFileError` naming `path` if it cannot be written."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        # created as any new file is (0666 less the umask)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        cause = err.strerror or type(err).__name__
        raise RunFileError(f"{path}: cannot write ({cause})") from None
    sync_directory(path.parent)


def sync_directory(directory: str | Path) -> None:
    """Flush a directory's entries (renames) to disk, where the platform and
    the file system allow it (POSIX; best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. EINVAL: the file system does not sync directories
        pass
    finally:
        os.close(fd)
