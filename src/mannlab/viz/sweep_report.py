"""The HTML report of a sweep directory (`mannlab report DIR`, DIR made by
`mannlab sweep`): success rate per configuration, time-to-converge
distributions, and learning curves overlaid per configuration (median and
quartile band over seeds).

It reads ``DIR/sweep.json`` and the trials' run directories only: this
module sits in the viz layer, below `mannlab.sweep`, which writes them.
"""

from pathlib import Path

SWEEP_FILE = "sweep.json"
TRIALS_DIR = "trials"
FORMAT = "mannlab-sweep-1"


def is_sweep_dir(path: str | Path) -> bool:
    """Whether `path` is a sweep directory (it has sweep.json)."""
    return (Path(path) / SWEEP_FILE).is_file()
