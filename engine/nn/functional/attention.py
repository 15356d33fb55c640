"""attention functionals."""
__all__ = []
