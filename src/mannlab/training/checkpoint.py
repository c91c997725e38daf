"""Checkpoints: safetensors (plain tensors, no code runs on load), written atomically.

A checkpoint holds one seed's parameters and optimiser state as numbered
tensors (``params/0007``, ``opt/0003``) in the order of ``jax.tree.leaves`` of
a skeleton built from the run's config, plus JSON metadata: a format tag, the
training state (step, data RNG, sliding windows, clock) and the config. Loading
checks the tag, the leaf count, every shape and dtype against the skeleton, and
the stored config against the run's (`check_config`), so a foreign or
mismatched file fails with a message naming the problem.
"""

import json
import os
import uuid
from pathlib import Path
from typing import Any

import jax
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from mannlab.config import parse_config

FORMAT = "mannlab-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not fit the config."""


def _tensors(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i:04d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def save_checkpoint(path: str | Path, params: Any, opt_state: Any, state: dict,
                    config_json: str) -> None:
    """Write params, optimiser state and training `state` (JSON-able) to `path`.

    The file is written to a temporary name in the same directory, flushed to
    disk and renamed over `path`, so a crash (or power loss) leaves either the
    old checkpoint or the new one, never a half-written file.
    """
    save_checkpoints([(path, params, opt_state, state, config_json)])


def save_checkpoints(checkpoints: list[tuple]) -> None:
    """`save_checkpoint` for several (path, params, opt_state, state,
    config_json) at once, as a run saves its seeds: every file is written
    before any replaces its old one, so training stopped while saving leaves
    no seed without its checkpoint; if writing one fails, the temporary files
    already written are removed."""
    written = []
    try:
        for checkpoint in checkpoints:
            written.append(_write_temporary(*checkpoint))
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in written:
        os.replace(tmp, path)
    for directory in {path.parent for _, path in written}:
        _sync_directory(directory)


def _write_temporary(path: str | Path, params: Any, opt_state: Any, state: dict,
                     config_json: str) -> tuple[Path, Path]:
    """Write a checkpoint for `path` under a temporary name beside it, flushed
    to disk, with the permissions of a normal new file. Returns (temporary,
    path)."""
    path = Path(path)
    tensors = {**_tensors("params", params), **_tensors("opt", opt_state)}
    meta = {"format": FORMAT, "state": json.dumps(state), "config": config_json}
    data = save(tensors, metadata=meta)
    tmp = path.parent / f".ckpt-{uuid.uuid4().hex}.tmp"
    try:
        # created as any new file (0666 less the umask; safetensors' own
        # writer and mkstemp make 0600 files)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, path


def _sync_directory(directory: Path) -> None:
    """Flush a directory's entries (the renames) to disk, where the platform
    and file system allow it (POSIX; best effort)."""
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


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata, checked for the mannlab format tag."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mannlab checkpoint (format tag "
                              f"{meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def _flat(tree: dict, prefix: str = "") -> dict:
    """Nested dicts as {"a.b.c": value}."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_config(path: str | Path, meta: dict, config, ignore: tuple[str, ...] = (),
                 sections: tuple[str, ...] | None = None) -> None:
    """Raise CheckpointError unless the config stored in the checkpoint equals
    `config` (a RunConfig) in every field except those in `ignore` (dotted
    names such as "train.max_steps"), looking only at `sections` if given."""
    try:
        stored = parse_config(json.loads(meta["config"]))
    except (KeyError, ValueError) as err:  # ConfigError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: its stored config is unreadable ({err})") from None
    old, new = _flat(stored.model_dump(mode="json")), _flat(config.model_dump(mode="json"))
    for key in sorted(old.keys() | new.keys()):
        if key in ignore or (sections and key.split(".")[0] not in sections):
            continue
        if old.get(key) != new.get(key):
            raise CheckpointError(f"{path}: written with {key}={old.get(key)!r}, but the run's "
                                  f"config has {key}={new.get(key)!r}: the checkpoint belongs "
                                  "to another configuration")


def _fill(path: Path, prefix: str, skeleton: Any, tensors: dict) -> Any:
    leaves, treedef = jax.tree.flatten(skeleton)
    names = sorted(k for k in tensors if k.startswith(prefix + "/"))
    if len(names) != len(leaves):
        raise CheckpointError(f"{path}: {prefix} has {len(names)} tensors, the config's model "
                              f"needs {len(leaves)}: the checkpoint belongs to another model")
    expected = [f"{prefix}/{i:04d}" for i in range(len(leaves))]
    if names != expected:
        unexpected = next(n for n in names if n not in expected)
        raise CheckpointError(f"{path}: unexpected tensor name {unexpected!r} (expected "
                              f"{prefix}/0000 to {expected[-1]})")
    out = []
    for i, leaf in enumerate(leaves):
        arr = tensors[f"{prefix}/{i:04d}"]
        want = np.asarray(leaf)
        if arr.shape != want.shape or arr.dtype != want.dtype:
            raise CheckpointError(f"{path}: {prefix}/{i:04d} is {arr.dtype}{list(arr.shape)}, "
                                  f"the config's model needs {want.dtype}{list(want.shape)}")
        out.append(arr)
    return jax.tree.unflatten(treedef, out)


def load_params(path: str | Path, params_skeleton: Any, config=None) -> Any:
    """Only the parameters (for evaluation: any optimiser state may be stored).
    With `config`, its model section must be the one the checkpoint was
    written with."""
    path = Path(path)
    meta = read_metadata(path)
    if config is not None:
        check_config(path, meta, config, sections=("model",))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    return _fill(path, "params", params_skeleton, tensors)


def load_checkpoint(path: str | Path, params_skeleton: Any, opt_skeleton: Any, config=None,
                    may_differ: tuple[str, ...] = ()):
    """Load into the shapes of the skeletons: (params, opt_state, state dict).
    With `config`, the checkpoint's stored config must equal it except in the
    fields `may_differ` (`check_config`)."""
    path = Path(path)
    meta = read_metadata(path)
    if config is not None:
        check_config(path, meta, config, ignore=may_differ)
    try:
        tensors = load_file(str(path))
        state = json.loads(meta["state"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    params = _fill(path, "params", params_skeleton, tensors)
    opt_state = _fill(path, "opt", opt_skeleton, tensors)
    return params, opt_state, state
