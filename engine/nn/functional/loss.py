"""loss functionals."""
__all__ = []
