"""Jupyter widgets for clgrad (graph view, backprop stepper, gradient flow, training monitor)."""
