"""attention modules."""
__all__ = []
