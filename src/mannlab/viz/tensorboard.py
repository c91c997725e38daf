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

from mannlab.viz.figures import Panel, sequence_panels
from mannlab.viz.trace import make_tracer, sample_sequence, seed_slice

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
    """Logs the images of one test sequence for each seed of a trainer."""

    def __init__(self, static, task, config, length: int | None = None):
        self.config = config
        self.length = length or getattr(task, "max_length", None)
        self.batch = sample_sequence(task, self.length)
        self._tracer = make_tracer(static)

    def panels(self, params) -> list[list[Panel]]:
        """The panels of every seed in stacked `params` [S, ...]."""
        outputs = self._tracer(params, self.batch)
        return [sequence_panels(self.batch, *seed_slice(outputs, i))
                for i in range(len(outputs[0]))]

    def log(self, params, targets) -> None:
        """Log images for `targets`: (seed index in params, step, writer, seed name)."""
        if not targets:
            return
        per_seed = self.panels(params)
        for i, step, writer, _ in targets:
            for p in per_seed[i]:
                writer.add_image(f"sequence/{p.key}", panel_image(p), step, dataformats="HWC")
            writer.flush()
