"""Sequence figures: shared colour scales, labelled integer axes, legible sizes,
every trace field of the NTM and of a DNC-like model drawn, and no say over
the user's matplotlib backend."""

import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest

from mannlab.tasks.copy import CopyTask
from mannlab.viz.figures import (
    TOUCHED,
    end_of_input,
    figure_title,
    sequence_figure,
    sequence_panels,
    touched_rows,
)
from mannlab.viz.tensorboard import panel_image

N, M = 128, 20


class NTMLike(NamedTuple):
    read_weights: np.ndarray
    write_weights: np.ndarray
    erase: np.ndarray
    add: np.ndarray
    memory: np.ndarray


class DNCLike(NamedTuple):
    read_weights: np.ndarray
    write_weights: np.ndarray
    usage: np.ndarray
    allocation: np.ndarray
    read_modes: np.ndarray
    memory: np.ndarray
    link: np.ndarray | None


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def copy_sequence(length: int):
    task = CopyTask(bits=8, max_length=20)
    batch = task.sample(np.random.default_rng(0), 1, length=length)
    T = batch.inputs.shape[0]
    probs = np.random.default_rng(1).uniform(size=(T, 8))
    return batch, probs, T


def ntm_trace(T: int):
    rng = np.random.default_rng(2)
    return NTMLike(softmax(rng.normal(size=(T, 1, N)) * 3), softmax(rng.normal(size=(T, 1, N))),
                   rng.uniform(size=(T, 1, M)), np.tanh(rng.normal(size=(T, 1, M))),
                   rng.normal(size=(T, N, M)) * 0.7)


def test_length_120_with_128_cells_stays_legible():
    batch, probs, T = copy_sequence(120)
    assert T == 241
    before = np.random.default_rng(3).normal(size=(N, M)) * 2.0
    trace = ntm_trace(T)
    title = "NTM on copy, length 120 (seed-0)"
    fig = sequence_figure(batch, probs, trace, title, memory_before=before)
    width, height = fig.get_size_inches()
    assert 20 <= width <= 26 and height <= 24  # ~0.1 in per step, not a poster
    assert fig.dpi * width / T >= 8  # at least 8 pixels per time step
    assert fig._suptitle.get_text() == title
    axes = {ax.get_title(loc="left"): ax for ax in fig.axes if ax.get_title(loc="left")}
    # every time panel spans the sequence with integer time-step ticks
    for name in ("input", "target", "read weights", "write weights", "erase", "add"):
        ax = axes[name]
        assert ax.get_xlim() == (-0.5, T - 0.5)
        ticks = [t for t in ax.get_xticks() if 0 <= t < T]
        assert len(ticks) >= 5 and all(float(t).is_integer() for t in ticks), ticks
        assert all(float(t).is_integer() for t in ax.get_yticks())
    assert axes["add"].get_xlabel() == "time step"
    assert axes["read weights"].get_ylabel() == "memory location"
    # shared colour scales: weightings on [0, 1]; memory before and after on one
    # symmetric scale covering both
    clim = {name: ax.images[0].get_clim() for name, ax in axes.items()}
    assert clim["read weights"] == clim["write weights"] == clim["input"] == (0, 1)
    after = next(k for k in clim if k.startswith("memory after"))
    before_key = "memory before the first step"
    lim = max(np.abs(before).max(), np.abs(trace.memory[-1]).max())
    assert clim[after] == clim[before_key] == pytest.approx((-lim, lim))
    assert axes[before_key].get_ylabel() == "memory location"
    assert axes[before_key].get_xlabel() == "word element"
    assert axes[before_key].images[0].get_array().shape == (N, M)


def test_dnc_fields_are_drawn():
    batch, probs, T = copy_sequence(5)
    rng = np.random.default_rng(4)
    trace = DNCLike(softmax(rng.normal(size=(T, 2, 16))), softmax(rng.normal(size=(T, 1, 16))),
                    rng.uniform(size=(T, 16)), softmax(rng.normal(size=(T, 1, 16))),
                    softmax(rng.normal(size=(T, 2, 3))), rng.normal(size=(T, 16, 6)),
                    rng.uniform(size=(T, 16, 16)) / 16)
    panels = {p.key: p for p in sequence_panels(batch, probs, trace, np.zeros((16, 6)))}
    assert {"usage", "allocation", "read_modes_0", "read_modes_1", "read_weights_0",
            "read_weights_1", "memory_before", "memory_after", "links"} <= set(panels)
    assert panels["read_modes_0"].yticklabels == ("backward", "content", "forward")
    assert panels["links"].image.shape == (16, 16) and panels["links"].kind == "snapshot"
    end = end_of_input(batch.loss_mask[:, 0], T)  # copy of 5: input, delimiter, answer
    assert end == 5 and batch.loss_mask[end, 0] == 0 and batch.loss_mask[end + 1, 0] == 1
    np.testing.assert_array_equal(panels["links"].image, trace.link[end])
    assert panels["usage"].image.shape == (16, T)
    fig = sequence_figure(batch, probs, trace, figure_title(_config({"name": "copy"}), 5, "seed-0", 100), memory_before=None)
    assert any(ax.get_title(loc="left").startswith("link matrix") for ax in fig.axes)
    unlinked = {p.key for p in sequence_panels(batch, probs, trace._replace(link=None))}
    assert "links" not in unlinked and "usage" in unlinked
    for p in panels.values():
        image = panel_image(p)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] >= p.image.shape[0] and image.shape[1] >= p.image.shape[1]


def _config(task: dict):
    from mannlab.config import RunConfig

    return RunConfig.model_validate({"task": task, "model": {"name": "dnc"}})


@pytest.mark.parametrize(("task", "named"), [
    ({"name": "copy"}, "copy"),
    ({"name": "chomsky", "task": "reverse_string"}, "chomsky reverse_string"),
    ({"name": "babi", "tasks": [1]}, "babi task 1"),
    ({"name": "babi", "tasks": [2, 19]}, "babi tasks 2 19"),
])
def test_title_names_model_task_and_length(task, named):
    assert (figure_title(_config(task), 5, "seed-0", 100)
            == f"DNC on {named}, length 5 (seed-0, step 100)")


def test_lstm_has_only_input_target_output():
    batch, probs, _ = copy_sequence(3)
    panels = sequence_panels(batch, probs, ())
    assert [p.key for p in panels] == ["input", "target", "output"]
    sequence_figure(batch, probs, (), "LSTM on copy, length 3")


BACKEND_CHECK = """
import sys
import matplotlib
matplotlib.use("svg")  # the user's choice, not Agg
import numpy as np
from mannlab.tasks.copy import CopyTask
from mannlab.viz import curves, report
from mannlab.viz.figures import save_figure, sequence_figure
print(matplotlib.get_backend())
batch = CopyTask(bits=8, max_length=5).sample(np.random.default_rng(0), 1, length=3)
save_figure(sequence_figure(batch, np.full((7, 8), 0.5), (), "LSTM on copy, length 3"),
            sys.argv[1] + "/sequence.png")
runs = [("ntm", {"seed-0": {"10": {"bits_wrong": 0.5}, "20": {"bits_wrong": 2.0}}})]
curves.error_vs_length(runs, "bits_wrong").savefig(sys.argv[1] + "/lengths.png")
print(matplotlib.get_backend())
"""


def test_importing_and_drawing_leave_the_users_backend_alone(tmp_path):
    """Importing the figure and report modules chooses no backend (it used to
    switch every importing process to Agg), and figures still save to PNG."""
    out = subprocess.run([sys.executable, "-c", BACKEND_CHECK, str(tmp_path)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "svg"]
    for name in ("sequence.png", "lengths.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sparse_sam_fields_are_drawn_as_dense_weightings():
    import numpy as np

    from mannlab.viz.figures import densify_sparse_fields

    fields = {"read_rows": np.array([[[0, 2]], [[2, 2]]]),  # [T=2, R=1, K=2]
              "read_row_weights": np.array([[[0.75, 0.25]], [[0.5, 0.5]]]),
              "write_rows": np.array([[1, 3], [3, 3]]), "write_row_weights": np.ones((2, 2))}
    dense = densify_sparse_fields(fields, 4)
    np.testing.assert_allclose(dense["read_weights"], [[[0.75, 0, 0.25, 0]], [[0, 0, 1, 0]]])
    np.testing.assert_allclose(dense["write_weights"], [[0, 1, 0, 1], [0, 0, 0, 2]])
    assert "read_rows" not in dense
    assert densify_sparse_fields(fields, 10**6) is fields  # too many rows to draw


def test_touched_rows_are_those_a_weighting_reaches():
    w = np.zeros((10, 4))
    w[3, 0], w[7, 2], w[5, 1] = 0.5, TOUCHED, TOUCHED / 2
    assert touched_rows([w]).tolist() == [3, 7]
    assert touched_rows([w, np.eye(10, 4)]).tolist() == [0, 1, 2, 3, 7]
    assert touched_rows([]).tolist() == []


def test_a_large_memory_draws_only_its_touched_locations():
    batch, probs, T = copy_sequence(5)
    rows, wide = [2, 3, 400], 512
    weights = np.zeros((T, 1, wide))
    for t in range(T):
        weights[t, 0, rows[t % 3]] = 1.0
    memory = np.random.default_rng(0).normal(size=(T, wide, M))
    trace = NTMLike(weights, weights, np.zeros((T, 1, M)), np.zeros((T, 1, M)), memory)
    panels = {p.key: p for p in sequence_panels(batch, probs, trace, memory[0])}
    for key in ("read_weights", "write_weights", "memory_before", "memory_after"):
        p = panels[key]
        assert p.rows.tolist() == rows and p.image.shape[0] == 3, key
        assert "(3 of 512 locations)" in p.title
    np.testing.assert_array_equal(panels["memory_after"].image, memory[T - 1][rows])
    assert panels["erase"].rows is None
    sequence_figure(batch, probs, trace, "title", memory_before=memory[0])  # draws


def test_a_memory_of_128_rows_is_drawn_whole():
    batch, probs, T = copy_sequence(5)
    trace = ntm_trace(T)
    weights = np.zeros_like(trace.read_weights)
    weights[..., 0] = 1.0
    trace = trace._replace(read_weights=weights, write_weights=weights)
    panels = {p.key: p for p in sequence_panels(batch, probs, trace)}
    assert panels["read_weights"].rows is None and panels["read_weights"].image.shape[0] == N


def test_a_large_dnc_crops_usage_allocation_and_links_to_the_same_locations():
    batch, probs, T = copy_sequence(5)
    wide, rows = 300, [10, 299]
    weights = np.zeros((T, 1, wide))
    weights[:, 0, 10], weights[::2, 0, 299] = 0.6, 0.4
    link = np.random.default_rng(5).uniform(size=(T, wide, wide))
    trace = DNCLike(weights, weights, np.ones((T, wide)), weights, np.ones((T, 1, 3)) / 3,
                    np.zeros((T, wide, 6)), link)
    panels = {p.key: p for p in sequence_panels(batch, probs, trace, np.zeros((wide, 6)))}
    for key in ("usage", "allocation", "read_weights", "memory_before"):
        assert panels[key].rows.tolist() == rows, key
    step = end_of_input(np.asarray(batch.loss_mask)[:, 0], T)
    np.testing.assert_array_equal(panels["links"].image, link[step][np.ix_(rows, rows)])
