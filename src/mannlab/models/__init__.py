"""Sequence models sharing one interface (see `mannlab.models.base`)."""
