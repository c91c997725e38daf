"""Tasks: data generators and their metrics (see `mannlab.tasks.base`)."""
