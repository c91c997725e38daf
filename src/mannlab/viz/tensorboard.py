"""TensorBoard images of a test sequence, logged at every held-out evaluation.

One fixed sequence (the task's longest training length) is run through every
seed's current parameters; each panel of `figures.sequence_panels` (input,
target, output, read and write weightings, erase and add, memory before and
after, and for the DNC usage, allocation, read modes and links) becomes an
image tag ``sequence/<panel>``: the heatmap itself, coloured on the same
shared scale as `mannlab show` and the report, every cell enlarged to a block
of pixels (time left to right, memory locations top to bottom). No matplotlib
layout is involved, so it costs milliseconds; it runs only at evaluation time
(one compiled program, one sequence), never in the per-step loop, and
``train.log_images: false`` turns it off.
"""

import matplotlib
import numpy as np

from mannlab.training.evaluate import make_tracer, sample_sequence
from mannlab.training.trainer import Trainer
from mannlab.viz.figures import Panel, sequence_panels

TARGET_WIDTH = 720
"""Pixels a panel is enlarged towards (cells stay square-ish blocks)."""


def panel_image(panel: Panel, target_width: int = TARGET_WIDTH) -> np.ndarray:
    """The panel as an RGB uint8 image [H, W, 3], each cell a block of pixels."""
    image = np.nan_to_num(np.asarray(panel.image, dtype=np.float64))
    span = (panel.vmax - panel.vmin) or 1.0
    rgb = matplotlib.colormaps[panel.cmap]((image - panel.vmin) / span)[..., :3]
    rows, cols = image.shape
    sx = max(1, min(16, target_width // max(cols, 1)))
    sy = max(1, min(sx, 640 // max(rows, 1)))
    rgb = np.repeat(np.repeat(rgb, sy, axis=0), sx, axis=1)
    return (rgb * 255).round().astype(np.uint8)


class SequenceImageLogger:
    """A training-loop `EvalHook`: logs the images of one fixed test
    sequence (the task's longest training length) for each evaluated seed.

    Args:
      trainer: the trainer it will be attached to (its model and task).
    """

    def __init__(self, trainer: Trainer):
        self.batch = sample_sequence(trainer.task)
        self._tracer = make_tracer(trainer.learner.static)

    def panels(self, params) -> list[list[Panel]]:
        """The panels of every seed in stacked `params` [S, ...]."""
        return [sequence_panels(self.batch, t.probs, t.trace, t.memory_before)
                for t in self._tracer(params, self.batch)]

    def __call__(self, trainer: Trainer, seeds: list[int]) -> None:
        """Log the images of `seeds` (indices into the trainer's seeds) at their step."""
        if not seeds:
            return
        per_seed = self.panels(trainer.learner.params())
        for i in seeds:
            writer = trainer.writers[i].tensorboard
            for p in per_seed[i]:
                writer.add_image(f"sequence/{p.key}", panel_image(p), trainer.seeds[i].step,
                                 dataformats="HWC")
            writer.flush()
