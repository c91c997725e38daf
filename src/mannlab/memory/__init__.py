"""Addressing primitives: small pure functions, one paper equation each.

Every function works on ONE example (no batch axis) and is batched over heads;
models apply `jax.vmap` for the batch.  Shapes use N memory rows, M row width,
H heads.
"""
