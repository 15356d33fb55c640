"""activation functionals."""
__all__ = []
