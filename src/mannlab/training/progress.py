"""Training progress: steps, throughput, sliding-window metrics.

On a terminal (or in Jupyter) a rich progress bar with the run's name and
statistics below it (wrapped on a narrow terminal, never cut); anywhere else
(a CI log, nohup, a pipe) one plain, complete line per update, e.g.

    ntm on copy  step 5000/20000  0:01:12  412 seq/s | bits_wrong 0.31 | cost 1.2 | held-out bits_wrong 0.25

(a bar drawn into a file is cut to the console's width: ``5000/2…``).
"""

import time
from datetime import timedelta

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

PLAIN_EVERY = 10.0
"""Seconds between two progress lines off a terminal (a CI log stays short)."""


class ProgressReporter:
    """Shows the progress of all seeds of a Trainer (means over the seeds
    still training).

    Args:
      console: where to write (default: a rich Console on standard output).
        A bar if it is a terminal or a Jupyter notebook, else plain lines.
      plain_every: off a terminal, seconds between two lines at least.
    """

    def __init__(self, console: Console | None = None, plain_every: float = PLAIN_EVERY):
        self.console = console or Console()
        self.plain_every = plain_every
        self.as_bar = self.console.is_terminal or self.console.is_jupyter

    def start(self, trainer) -> None:
        steps = self._steps(trainer)
        self.title = f"{trainer.config.model.name} on {trainer.config.task.name}"
        self.started = self.last_time = time.perf_counter()
        self.last_steps = steps
        if not self.as_bar:
            self._line(trainer, steps, "compiling...")
            self.last_stats = None
            return
        self.progress = Progress(BarColumn(bar_width=None),
                                 TextColumn("{task.completed:>7.0f}/{task.total:.0f}"),
                                 TimeElapsedColumn(), console=self.console)
        self.bar = self.progress.add_task(self.title, total=trainer.cfg.max_steps,
                                          completed=steps)
        self.live = Live(self._display("compiling..."), console=self.console)
        self.live.start()

    @staticmethod
    def _steps(trainer) -> int:
        return max(p.step for p in trainer.seeds)

    def _display(self, stats: str) -> Group:
        """The bar (it alone shrinks with the terminal), and below it the
        run's name and statistics (wrapped, never cut)."""
        return Group(self.progress, Text.assemble((self.title, "bold"), "  ", stats,
                                                  overflow="fold"))

    def _line(self, trainer, steps: int, stats: str) -> None:
        elapsed = timedelta(seconds=round(time.perf_counter() - self.started))
        self.console.print(f"{self.title}  step {steps}/{trainer.cfg.max_steps}  {elapsed}  "
                           f"{stats}", soft_wrap=True, markup=False, highlight=False)

    def _stats(self, trainer, steps: int) -> tuple[str | None, list[str]]:
        """('412 seq/s', ['bits_wrong 0.31', 'cost 1.2', 'held-out bits_wrong
        0.25', 'converged 1/8']): throughput since the last update (None if no
        step was taken since), window averages over the seeds still training,
        the best held-out evaluation, and (with several seeds) how many have
        converged."""
        now = time.perf_counter()
        rate = None
        if steps > self.last_steps:
            per_second = (steps - self.last_steps) * trainer.cfg.batch_size / max(
                now - self.last_time, 1e-9)
            rate = f"{per_second:,.0f} seq/s"
        self.last_time, self.last_steps = now, steps
        stats = []
        names = trainer.task.metric_names
        live = [p for p in trainer.seeds if p.training] or trainer.seeds
        for name in names:
            stats.append(f"{name} {sum(p.average(name) for p in live) / len(live):.3g}")
        evals = [p.last_eval[names[0]] for p in trainer.seeds if p.last_eval]
        if evals:
            stats.append(f"held-out {names[0]} {min(evals):.3g}")
        if len(trainer.seeds) > 1:
            done = sum(p.converged is not None for p in trainer.seeds)
            stats.append(f"converged {done}/{len(trainer.seeds)}")
        return rate, stats

    def update(self, trainer) -> None:
        self._show(trainer, final=False)

    def finish(self, trainer) -> None:
        """The last update; off a terminal, no line if nothing changed since
        the previous one."""
        self._show(trainer, final=True)
        if self.as_bar:
            self.live.stop()

    def _show(self, trainer, final: bool) -> None:
        if not (self.as_bar or final) and time.perf_counter() - self.last_time < self.plain_every:
            return  # off a terminal, a line every `plain_every` seconds at most
        steps = self._steps(trainer)
        rate, stats = self._stats(trainer, steps)
        text = " | ".join(([rate] if rate else []) + stats)
        if self.as_bar:
            self.progress.update(self.bar, completed=steps)
            self.live.update(self._display(text), refresh=True)
        elif not final or rate or stats != self.last_stats:
            self._line(trainer, steps, text)
            self.last_stats = stats
