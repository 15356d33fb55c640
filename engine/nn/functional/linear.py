"""linear functionals."""
__all__ = []
