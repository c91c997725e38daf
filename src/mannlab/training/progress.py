"""A rich progress bar for the trainer: steps, throughput, sliding-window metrics."""

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressReporter:
    """Shows one bar for all seeds of a Trainer (means over the seeds still training)."""

    def __init__(self):
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed:>7.0f}/{task.total:.0f}"),
                                 TimeElapsedColumn(), TextColumn("{task.fields[stats]}"))

    def start(self, trainer) -> None:
        self.last = (time.perf_counter(), self._steps(trainer))
        self.bar = self.progress.add_task(
            f"{trainer.config.model.name} on {trainer.config.task.name}",
            total=trainer.cfg.max_steps, completed=self._steps(trainer), stats="compiling...")
        self.progress.start()

    @staticmethod
    def _steps(trainer) -> int:
        return max(p.step for p in trainer.seeds)

    def update(self, trainer) -> None:
        now, steps = time.perf_counter(), self._steps(trainer)
        rate = (steps - self.last[1]) * trainer.cfg.batch_size / max(now - self.last[0], 1e-9)
        self.last = (now, steps)
        names = trainer.task.metric_names
        live = [p for p in trainer.seeds if p.converged is None] or trainer.seeds
        stats = [f"{rate:,.0f} seq/s"]
        for name in names:
            stats.append(f"{name} {sum(p.average(name) for p in live) / len(live):.3g}")
        evals = [p.last_eval[names[0]] for p in trainer.seeds if p.last_eval]
        if evals:
            stats.append(f"held-out {names[0]} {min(evals):.3g}")
        if len(trainer.seeds) > 1:
            done = sum(p.converged is not None for p in trainer.seeds)
            stats.append(f"converged {done}/{len(trainer.seeds)}")
        self.progress.update(self.bar, completed=steps, stats=" | ".join(stats))

    def finish(self, trainer) -> None:
        self.update(trainer)
        self.progress.stop()
