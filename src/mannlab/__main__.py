"""The `mannlab` program (also `python -m mannlab`)."""

import sys

from mannlab import runtime


def entry() -> None:
    """Restart once with huge pages for malloc (`runtime.restart_with_huge_pages`),
    then run the CLI."""
    runtime.restart_with_huge_pages()
    # imported after the restart, so that the process that restarts loads no JAX
    from mannlab.cli import main

    sys.exit(main())


if __name__ == "__main__":
    entry()
