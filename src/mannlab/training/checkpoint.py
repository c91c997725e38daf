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
import math
import os
import re
import uuid
from pathlib import Path
from typing import Any

import jax
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from mannlab.config import parse_config
from mannlab.training import files

FORMAT_NAME = "mannlab-checkpoint"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
"""The format tag in every checkpoint's metadata. The version goes up when
the layout changes; a reader says which version a file has and which it reads."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not fit the config."""


def _tensors(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i:04d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def save_checkpoint(path: str | Path, params: Any, opt_state: Any, state: dict,
                    config_json: str, inputs: dict | None = None) -> None:
    """Write params, optimiser state and training `state` (JSON-able) to `path`.

    The file is written to a temporary name in the same directory, flushed to
    disk and renamed over `path`, so a crash (or power loss) leaves either the
    old checkpoint or the new one, never a half-written file.
    """
    save_checkpoints([(path, params, opt_state, state, config_json, inputs)])


def save_checkpoints(checkpoints: list[tuple]) -> None:
    """`save_checkpoint` for several (path, params, opt_state, state,
    config_json, inputs) at once, as a run saves its seeds: every file is written
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
        files.sync_directory(directory)


def _write_temporary(path: str | Path, params: Any, opt_state: Any, state: dict,
                     config_json: str, inputs: dict | None) -> tuple[Path, Path]:
    """Write a checkpoint for `path` under a temporary name beside it, flushed
    to disk, with the permissions of a normal new file. Returns (temporary,
    path)."""
    path = Path(path)
    tensors = {**_tensors("params", params), **_tensors("opt", opt_state)}
    meta = {"format": FORMAT, "state": json.dumps(state), "config": config_json,
            "inputs": json.dumps(inputs)}
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
    except OSError as err:  # a full disk, a read-only or vanished directory
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: cannot write ({err.strerror or type(err).__name__}); "
                              f"the previous checkpoint is intact") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, path


TEMPORARY = re.compile(r"\.ckpt-[0-9a-f]{32}\.tmp")
"""The name of a checkpoint being written (`_write_temporary`)."""


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Remove the temporaries that writes interrupted by a crash or a kill
    left in `directory` (a seed's or the run's directory), before training
    there resumes: checkpoints' (``.ckpt-<hex>.tmp``) and `write_text_atomic`'s
    (``.<name>.<hex>.tmp``). Returns the removed files."""
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed  # no directory, no temporaries: opening the run says what is wrong
    for entry in entries:
        ours = TEMPORARY.fullmatch(entry.name) or files.TEMPORARY.fullmatch(entry.name)
        if ours and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            except OSError as err:
                raise CheckpointError(f"{entry}: cannot remove this stale checkpoint temporary "
                                      f"({err.strerror or type(err).__name__})") from None
            removed.append(entry)
    return removed


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata, checked for the mannlab format tag, a
    config, and a training state with a step (its other keys, those present,
    checked by `check_state`)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    check_format(path, meta.get("format"))
    for key, what in (("state", "training state"), ("config", "config")):
        if key not in meta:
            raise CheckpointError(f"{path}: corrupt checkpoint (no {what} in its metadata)")
    state = _parse_state(path, meta["state"])
    check_state(path, state, complete=False)  # what is there; the rest when it is loaded
    if "step" not in state:  # what every reader of a checkpoint asks first
        raise CheckpointError(f"{path}: its training state has no 'step': not a checkpoint "
                              "this version of mannlab wrote")
    return meta


def check_format(path: Path, tag: Any) -> None:
    """CheckpointError unless `tag` is this version's `FORMAT`: a foreign
    file, or a mannlab checkpoint of another format version (saying whether
    mannlab is older or newer than the file)."""
    if tag == FORMAT:
        return
    name, _, version = str(tag).partition("/")
    if name != FORMAT_NAME or not version.isdigit():
        raise CheckpointError(f"{path}: not a mannlab checkpoint (format tag {tag!r}, "
                              f"expected {FORMAT!r})")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than "
                              f"this mannlab reads ({FORMAT_VERSION}): upgrade mannlab")
    raise CheckpointError(f"{path}: checkpoint format version {version} is older than this "
                          f"mannlab reads ({FORMAT_VERSION}) and has no migration: retrain, or "
                          "load it with the mannlab version that wrote it")


def _parse_state(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise CheckpointError(f"{path}: corrupt checkpoint (its training state is not JSON: "
                              f"{err})") from None


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
    for section in ("model", "task"):  # another kind of model or task: say that, not a field
        key = f"{section}.name"
        if (old[key] != new[key] and key not in ignore
                and (not sections or section in sections)):
            raise CheckpointError(f"{path}: the checkpoint is of a {old[key]} {section}, this "
                                  f"run's {section} is {new[key]}")
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


def check_inputs(path: Path, meta: dict, inputs: dict | None) -> None:
    """CheckpointError unless the checkpoint was trained on the input features
    `inputs` (`Task.inputs_fingerprint`: frozen word vectors)."""
    try:
        stored = json.loads(meta.get("inputs", "null"))
    except ValueError:
        raise CheckpointError(f"{path}: corrupt checkpoint (its inputs record is not JSON)") \
            from None
    if stored != inputs:
        raise CheckpointError(f"{path}: trained on inputs {json.dumps(stored)}, but this task "
                              f"gives {json.dumps(inputs)}: the word vectors differ")


def load_params(path: str | Path, params_skeleton: Any, config=None,
                inputs: dict | None = None) -> Any:
    """Only the parameters (for evaluation: any optimiser state may be stored).
    With `config`, its model section must be the one the checkpoint was
    written with, and the task's input features `inputs` those it was
    trained on (`check_inputs`)."""
    path = Path(path)
    meta = read_metadata(path)
    if config is not None:
        check_config(path, meta, config, sections=("model",))
        check_inputs(path, meta, inputs)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    return _fill(path, "params", params_skeleton, tensors)


def load_checkpoint(path: str | Path, params_skeleton: Any, opt_skeleton: Any, config=None,
                    may_differ: tuple[str, ...] = (), seed: int | None = None,
                    inputs: dict | None = None):
    """Load into the shapes of the skeletons: (params, opt_state, state dict).
    With `config`, the checkpoint's stored config must equal it except in the
    fields `may_differ` (`check_config`), and the training state must have
    every key the loop restores (`check_state`; without `config`, only the
    keys present are checked). With `seed`, the state must be that seed's
    (not a checkpoint copied from another seed's directory)."""
    path = Path(path)
    meta = read_metadata(path)
    if config is not None:
        check_config(path, meta, config, ignore=may_differ)
        check_inputs(path, meta, inputs)
    state = _parse_state(path, meta["state"])
    check_state(path, state, complete=config is not None,
                mann_rl=config is not None and config.model.learner == "mann_rl")
    if seed is not None and state.get("seed", seed) != seed:
        raise CheckpointError(f"{path}: the checkpoint is seed {state['seed']}'s, not seed "
                              f"{seed}'s")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None
    params = _fill(path, "params", params_skeleton, tensors)
    opt_state = _fill(path, "opt", opt_skeleton, tensors)
    return params, opt_state, state


# ---------------------------------------------------------------- the training state
def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v) -> bool:
    return _number(v) and math.isfinite(v) and v >= 0


def _numbers(v) -> bool:
    return isinstance(v, list) and all(_number(x) for x in v)


def _windows(v) -> bool:
    return isinstance(v, dict) and all(_numbers(x) for x in v.values())


def _record(v) -> bool:
    return v is None or isinstance(v, dict)


def _generator_state(v) -> bool:
    """A state numpy's default generator (PCG64) accepts."""
    try:
        np.random.default_rng(0).bit_generator.state = v
    except (ValueError, TypeError, KeyError):
        return False
    return True


def _key(v) -> bool:
    return (isinstance(v, list) and len(v) == 2
            and all(_whole(x) and x < 2**32 for x in v))


STATE = {
    "step": (_whole, "a whole number >= 0"),
    "seconds": (_finite, "a finite number >= 0"),
    "rng": (_generator_state, "numpy's PCG64 generator state"),
    "windows": (_windows, "an object of lists of numbers"),
    "converged": (_record, "an object or null"),
    "last_eval": (_record, "an object or null"),
}
"""The loop's part of a checkpoint's training state (`SeedProgress.to_json`):
each key's check and what it should be."""

OPTIONAL_STATE = {
    "seed": (_whole, "a whole number >= 0"),
    "diverged": (_record, "an object or null"),
    "curriculum": (lambda v: isinstance(v, dict) and _whole(v.get("maximum"))
                   and v["maximum"] >= 1 and isinstance(v.get("values"), list)
                   and all(_number(x) for x in v["values"]),
                   "an object with a maximum length >= 1 and a list of numbers"),
}

MANN_RL_STATE = {
    "cycle": (_whole, "a whole number >= 0"),
    "memory_updates": (_whole, "a whole number >= 0"),
    "memory_loss": (lambda v: v is None or _number(v), "a number or null"),
    "key": (_key, "a JAX PRNG key (two 32-bit whole numbers)"),
}
"""MANN-RL's learner's part (``mann_rl``; `MannRLLearner.seed_state`)."""


def _check_fields(path: Path, where: str, state: dict, required: dict,
                  optional: dict | None = None, complete: bool = True) -> None:
    for key, (ok, expected) in {**required, **(optional or {})}.items():
        if key not in state:
            if complete and key in required:
                raise CheckpointError(f"{path}: its training state has no '{where}{key}': not "
                                      "a checkpoint this version of mannlab wrote")
            continue
        if not ok(state[key]):
            got = json.dumps(state[key])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise CheckpointError(f"{path}: its training state's {where}{key} is {got}, "
                                  f"expected {expected}")


def check_state(path: str | Path, state: Any, complete: bool = True,
                mann_rl: bool = False) -> None:
    """Raise CheckpointError naming `path` and the key unless `state` (a
    checkpoint's training state) has the loop's keys (`STATE`; all of them
    if `complete`, else those present) of the right types; with `mann_rl` (or
    a ``mann_rl`` key), also MANN-RL's learner's part. Keys of other learners'
    parts are left to them."""
    path = Path(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: its training state is a {type(state).__name__}, "
                              "expected an object")
    _check_fields(path, "", state, STATE, OPTIONAL_STATE, complete)
    if mann_rl or "mann_rl" in state:
        extras = state.get("mann_rl")
        if not isinstance(extras, dict):
            raise CheckpointError(f"{path}: its training state has no 'mann_rl' object (MANN-RL "
                                  "learner state)")
        _check_fields(path, "mann_rl.", extras, MANN_RL_STATE, complete=True)
