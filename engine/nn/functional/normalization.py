"""normalization functionals."""
__all__ = []
