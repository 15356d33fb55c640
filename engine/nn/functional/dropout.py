"""dropout functionals."""
__all__ = []
