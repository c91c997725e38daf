"""mannlab: memory-augmented neural networks (NTM, DNC, MANN-RL, LSTM) in JAX.

The Python API (`mannlab.api`): ``mannlab.train``, ``mannlab.resume``,
``mannlab.evaluate``, ``mannlab.load``, ``mannlab.figure``.
"""

__all__ = ["evaluate", "figure", "load", "resume", "train"]


def __getattr__(name: str):
    if name in __all__:
        # lazy: `import mannlab.runtime` (what the CLI loads before its
        # self-restart, see mannlab.__main__) must not load JAX
        from mannlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'mannlab' has no attribute {name!r}")
