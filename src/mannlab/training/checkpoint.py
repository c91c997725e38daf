"""Checkpoints: safetensors (plain tensors, no code runs on load), written atomically.

A checkpoint holds one seed's parameters and optimiser state as numbered
tensors (``params/0007``, ``opt/0003``) in the order of ``jax.tree.leaves`` of
a skeleton built from the run's config, plus JSON metadata: a format tag, the
training state (step, data RNG, sliding windows, clock) and the config. Loading
checks the tag, the leaf count, and every shape and dtype against the skeleton,
so a foreign or mismatched file fails with a message naming the problem.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

FORMAT = "mannlab-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not fit the config."""


def _tensors(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i:04d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def save_checkpoint(path: str | Path, params: Any, opt_state: Any, state: dict,
                    config_json: str) -> None:
    """Write params, optimiser state and training `state` (JSON-able) to `path`.

    The file is written to a temporary name in the same directory and renamed
    over `path`, so a crash never leaves a half-written checkpoint.
    """
    path = Path(path)
    tensors = {**_tensors("params", params), **_tensors("opt", opt_state)}
    meta = {"format": FORMAT, "state": json.dumps(state), "config": config_json}
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata, checked for the mannlab format tag."""
    from safetensors import safe_open

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


def _fill(path: Path, prefix: str, skeleton: Any, tensors: dict) -> Any:
    leaves, treedef = jax.tree.flatten(skeleton)
    names = sorted(k for k in tensors if k.startswith(prefix + "/"))
    if len(names) != len(leaves):
        raise CheckpointError(f"{path}: {prefix} has {len(names)} tensors, the config's model "
                              f"needs {len(leaves)}: the checkpoint belongs to another model")
    out = []
    for i, leaf in enumerate(leaves):
        arr = tensors[f"{prefix}/{i:04d}"]
        want = np.asarray(leaf)
        if arr.shape != want.shape or arr.dtype != want.dtype:
            raise CheckpointError(f"{path}: {prefix}/{i:04d} is {arr.dtype}{list(arr.shape)}, "
                                  f"the config's model needs {want.dtype}{list(want.shape)}")
        out.append(arr)
    return jax.tree.unflatten(treedef, out)


def load_params(path: str | Path, params_skeleton: Any) -> Any:
    """Only the parameters (for evaluation: any optimiser state may be stored)."""
    path = Path(path)
    read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    return _fill(path, "params", params_skeleton, tensors)


def load_checkpoint(path: str | Path, params_skeleton: Any, opt_skeleton: Any):
    """Load into the shapes of the skeletons: (params, opt_state, state dict)."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
        state = json.loads(meta["state"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    params = _fill(path, "params", params_skeleton, tensors)
    opt_state = _fill(path, "opt", opt_skeleton, tensors)
    return params, opt_state, state
