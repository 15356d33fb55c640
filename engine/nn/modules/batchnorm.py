"""batchnorm modules."""
__all__ = []
