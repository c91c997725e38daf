"""The 15 length-generalisation tasks of Delétang et al., "Neural Networks and
the Chomsky Hierarchy" (ICLR 2023, arXiv:2207.02098), grouped by level, with
the reference generators' token ids (`base` describes the protocol).

``TASKS`` maps each task's name (the reference's ``TASK_BUILDERS`` key) to
its class; ``make_task(name, **kwargs)`` builds one.
"""

from mannlab.tasks.chomsky import cs, dcf, regular
from mannlab.tasks.chomsky.base import ChomskyTask

TASKS: dict[str, type[ChomskyTask]] = {
    cls.name: cls for cls in regular.TASKS + dcf.TASKS + cs.TASKS}
LEVELS = {"regular": "regular", "dcf": "deterministic context-free",
          "cs": "context-sensitive"}


def make_task(name: str, **kwargs) -> ChomskyTask:
    """The task called `name` (a key of ``TASKS``), built with `kwargs`."""
    if name not in TASKS:
        raise ValueError(f"task: unknown Chomsky task {name!r} (one of {', '.join(TASKS)})")
    return TASKS[name](**kwargs)
