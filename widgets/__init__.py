"""Jupyter widgets for clgrad: watch a network compute and learn, inside the notebook.

GraphView        the autograd graph behind a tensor (layered layout, module folding,
                 gradient colours, non-finite tracing, SVG export and static fallback)
BackpropStepper  a recorded backward pass, node by node, with each op's local rule
GradientFlow     per-parameter gradient norms, update/data ratios, activation stats
TrainingMonitor  live curves of logged scalars with smoothing, log scale, progress/ETA
KernelProfile    a sortable per-kernel table and a launch timeline
FusedGraphView   what engine.compile made of a function: kernels as nodes, fused ops listed
graph_data       the laid-out graph as plain dicts (no frontend needed)

Each widget has a deterministic plain-text repr (nbval compares it).
"""
from .graph import GraphModel, GraphView, graph_data, render_svg
from .stepper import BackpropStepper
from .monitor import TrainingMonitor
from .gradflow import GradientFlow
from .profile import KernelProfile, aggregate
from .fused import FusedGraphView, fused_graph_data

__all__ = ["GraphView", "BackpropStepper", "GradientFlow", "TrainingMonitor", "KernelProfile", "graph_data",
           "GraphModel", "render_svg", "aggregate", "FusedGraphView", "fused_graph_data"]
