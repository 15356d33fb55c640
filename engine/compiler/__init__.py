"""engine.compile: capture a function's (or Module's) command stream once per input signature,
then replay it as a plan of fused kernels.  See engine/compiler/tracer.py."""
from .tracer import CompiledFunction, OptimizedModule, compile, explain

__all__ = ["compile", "CompiledFunction", "OptimizedModule", "explain"]
