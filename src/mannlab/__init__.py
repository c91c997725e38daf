"""mannlab: memory-augmented neural networks (NTM, DNC, MANN-RL, LSTM) in JAX.

The Python API (`mannlab.api`): ``mannlab.train``, ``mannlab.resume``,
``mannlab.evaluate``, ``mannlab.load``, ``mannlab.figure``.
"""

__all__ = ["evaluate", "figure", "load", "resume", "train"]


def __getattr__(name: str):
    # The API is imported on first use, so that `import mannlab.runtime` (which
    # the CLI runs before its self-restart, see mannlab.__main__) loads no JAX.
    if name in __all__:
        from mannlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'mannlab' has no attribute {name!r}")
