"""Small trained models that ship with mannlab: use them with no training.

    import mannlab.pretrained
    mannlab.pretrained.names()              # ['dnc-copy', 'dnc-repeat-copy', ...]
    model = mannlab.pretrained.load("ntm-copy")     # the Equinox module
    mannlab.pretrained.info("ntm-copy")     # its command, seed, budget and held-out figure

Each is a read-only run directory in the installed package, so everything
that takes a run takes ``pretrained:NAME`` too:

    mannlab eval pretrained:ntm-copy --lengths 20 50 120
    mannlab show pretrained:dnc-repeat-copy --length 8 -o x.png

Evaluations of a pretrained model are printed and returned, never written
into the package. ``scripts/pretrained.py`` trains them all again from their
recorded commands; `tests/test_pretrained.py` checks each still meets the
figure recorded with it.
"""

import json

import equinox as eqx

from mannlab import api
from mannlab.training.rundir import PRETRAINED, PRETRAINED_FILE, pretrained_dir, pretrained_names


def names() -> list[str]:
    """The shipped models' names."""
    return pretrained_names()


def info(name: str) -> dict:
    """How model `name` was trained and what it scored: ``command``, ``seed``,
    ``steps``, ``seconds``, ``heldout_bits_wrong`` (mean over
    ``heldout_sequences`` held-out sequences at the training lengths),
    ``threshold`` (None for the LSTM, shipped at the figure it reached) and
    ``trained`` (date and commit)."""
    return json.loads((pretrained_dir(name) / PRETRAINED_FILE).read_text())


def load(name: str) -> eqx.Module:
    """The trained model `name` (an Equinox module)."""
    return api.load(PRETRAINED + name)
