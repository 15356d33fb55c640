"""padding functionals."""
__all__ = []
