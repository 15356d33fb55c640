"""pooling functionals."""
__all__ = []
