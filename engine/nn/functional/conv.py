"""conv functionals."""
__all__ = []
