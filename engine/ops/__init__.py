"""Ops: one module per family; each op's kernel call and backward formula sit together."""
from . import methods  # noqa: F401  (binds Tensor methods)
