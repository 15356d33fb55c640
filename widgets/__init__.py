"""Jupyter widgets for clgrad: graph view, backprop stepper, gradient flow, training monitor,
kernel profile.  Each widget has a deterministic plain-text repr (nbval compares it)."""
from .graph import GraphModel, GraphView, graph_data, render_svg
from .stepper import BackpropStepper
from .monitor import TrainingMonitor
from .gradflow import GradientFlow

__all__ = ["GraphView", "BackpropStepper", "TrainingMonitor", "GradientFlow", "GraphModel", "graph_data", "render_svg"]
