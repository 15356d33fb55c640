"""sparse functionals."""
__all__ = []
