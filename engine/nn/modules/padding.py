"""padding modules."""
__all__ = []
