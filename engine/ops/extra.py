"""Op families added on top of the core: reductions beyond sum/mean, matmul,
indexing kernels, sorting, random sampling.  Each lives in its own module and
is re-exported here."""
__all__ = []
