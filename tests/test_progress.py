"""The progress display: a bar on a terminal, whole plain lines elsewhere (CI
logs, nohup), never cut short with '…'."""

import io
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from mannlab.training.progress import ProgressReporter

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeSeed:
    """What the reporter reads of a seed."""

    def __init__(self, converged=None, last_eval=None):
        self.step, self.converged, self.last_eval = 0, converged, last_eval

    @property
    def training(self) -> bool:
        return self.converged is None

    def average(self, name: str) -> float:
        return {"bits_wrong": 0.31, "cost": 1.25}[name]


def fake_trainer(seeds: int = 2):
    return SimpleNamespace(
        seeds=[FakeSeed(converged={"step": 3000} if i else None,
                        last_eval={"bits_wrong": 0.25, "cost": 0.9}) for i in range(seeds)],
        config=SimpleNamespace(model=SimpleNamespace(name="ntm"),
                               task=SimpleNamespace(name="associative_recall")),
        cfg=SimpleNamespace(max_steps=20000, batch_size=16),
        task=SimpleNamespace(metric_names=("bits_wrong", "cost")))


def run(console: Console, trainer) -> str:
    reporter = ProgressReporter(console=console, plain_every=0)
    reporter.start(trainer)
    for step in (5000, 20000):
        for seed in trainer.seeds:
            seed.step = step
        if step < 20000:
            reporter.update(trainer)
    reporter.finish(trainer)
    return console.file.getvalue()


STATS = re.compile(r"[\d,]+ seq/s \| bits_wrong 0\.31 \| cost 1\.25 \| held-out bits_wrong "
                   r"0\.25 \| converged 1/2$")


@pytest.mark.parametrize("width", [40, 200])
def test_off_a_terminal_each_update_is_one_whole_plain_line(width):
    out = run(Console(file=io.StringIO(), force_terminal=False, width=width), fake_trainer())
    lines = out.splitlines()
    assert len(lines) == 3  # start, update, finish
    assert "…" not in out and not ANSI.search(out)
    assert re.match(r"ntm on associative_recall  step 0/20000  0:00:0\d  compiling\.\.\.$",
                    lines[0])
    for line, step in zip(lines[1:], (5000, 20000)):
        assert line.startswith(f"ntm on associative_recall  step {step}/20000  "), line
        assert STATS.search(line), line


def test_one_seed_has_no_converged_count():
    out = run(Console(file=io.StringIO(), force_terminal=False), fake_trainer(seeds=1))
    assert out.splitlines()[-1].endswith("held-out bits_wrong 0.25")


@pytest.mark.parametrize("width", [50, 200])
def test_on_a_terminal_the_bar_keeps_its_count_and_the_statistics_their_own_line(width):
    out = run(Console(file=io.StringIO(), force_terminal=True, width=width), fake_trainer())
    text = ANSI.sub("", out)
    assert "…" not in text
    last = text.replace("\r", "\n").split("20000/20000")[-1]  # the final display
    assert re.match(r" +0:00:\d\d *\n", last), last
    assert "ntm on associative_recall  " in last and "bits_wrong 0.31" in last
    if width == 200:  # the statistics fit on one line
        assert STATS.search(last.strip().splitlines()[-1].strip()), last


def test_off_a_terminal_a_finish_without_news_prints_nothing_more():
    trainer = fake_trainer()
    console = Console(file=io.StringIO(), force_terminal=False)
    reporter = ProgressReporter(console=console, plain_every=0)
    reporter.start(trainer)
    for seed in trainer.seeds:
        seed.step = 100
    reporter.update(trainer)
    reporter.finish(trainer)  # no step, same statistics
    assert len(console.file.getvalue().splitlines()) == 2
    trainer.seeds[0].last_eval = {"bits_wrong": 0.01, "cost": 0.1}  # a final evaluation
    reporter.finish(trainer)
    last = console.file.getvalue().splitlines()[-1]
    assert "seq/s" not in last and last.endswith("held-out bits_wrong 0.01 | converged 1/2")


def test_off_a_terminal_lines_come_at_most_every_plain_every_seconds():
    trainer = fake_trainer()
    console = Console(file=io.StringIO(), force_terminal=False)
    reporter = ProgressReporter(console=console, plain_every=3600)
    reporter.start(trainer)
    for step in (100, 200, 300):
        for seed in trainer.seeds:
            seed.step = step
        reporter.update(trainer)  # within the hour: no line
    reporter.finish(trainer)  # the last state is always shown
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 2 and "step 300/20000" in lines[-1]
