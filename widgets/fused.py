"""What engine.compile made of a function: its replay plan as a graph, kernels as nodes.

    compiled = engine.compile(model)
    compiled(x)                       # first call traces
    FusedGraphView(compiled)          # the widget (a GraphView of the plan)
    fused_graph_data(compiled)        # the laid-out plan as plain dicts

A node is one replayed step: a GEMM, a reduction, a copy, or a fused elementwise kernel whose
subtitle lists the eager ops it replaced (hover or click for all of them).  Edges follow data
through the plan's buffers; boxes separate the forward plan from the backward plan.  Uses
only the compiled function's public `fused_graph()`.
"""
from .graph import CHAR_W, MIN_W, GraphView, _short
from .layout import NODE_H, layered_layout

__all__ = ["fused_graph_data", "FusedGraphView"]


def _sub(ops):
    if len(ops) == 1:
        return ""
    s = " + ".join(ops[:3])
    return f"{s} + {len(ops) - 3} more" if len(ops) > 3 else s


def fused_graph_data(compiled):
    """graph_data()-style dict (nodes, edges, clusters, layout) of `compiled`'s last plan."""
    plan = compiled if isinstance(compiled, dict) else compiled.fused_graph()
    nodes, edges, order = {}, [], []
    for n in plan["nodes"]:
        key = f"k{n['id']}"
        ops = n["ops"]
        fused = len(ops) > 1
        label = f"fused ×{len(ops)}" if fused else n["name"]
        nodes[key] = {"id": key, "kind": "group" if fused else ("op" if n["kind"] == "kernel" else "input"),
                      "label": _short(label), "sub": _short(_sub(ops)), "name": " + ".join(ops),
                      "module": n["phase"], "value": None, "grad": None, "nonfinite": False, "origin": False,
                      "color": None, "ops": ops, "launches": n["launches"]}
        order.append(key)
        for i in n["inputs"]:
            edges.append({"source": f"k{i}", "target": key, "count": 1, "color": None, "grad_rms": None})
    widths = {k: max(MIN_W, round(max(len(nd["label"]), len(nd["sub"])) * CHAR_W + 16)) for k, nd in nodes.items()}
    lay = layered_layout(order, widths, [(e["source"], e["target"]) for e in edges])
    for k, nd in nodes.items():
        cx, y = lay["pos"][k]
        nd.update(x=cx, y=y, w=widths[k], h=NODE_H, layer=lay["layer"][k])
    for e, pts, back in zip(edges, lay["edges"], lay["back"]):
        e["points"] = [list(p) for p in pts]
        e["back"] = back
    clusters = []
    for phase in ("forward", "backward"):
        mem = [nd for nd in nodes.values() if nd["module"] == phase]
        if not mem:
            continue
        x0 = min(nd["x"] - nd["w"] / 2 for nd in mem) - 8
        x1 = max(nd["x"] + nd["w"] / 2 for nd in mem) + 8
        y0 = min(nd["y"] for nd in mem) - 20
        y1 = max(nd["y"] + nd["h"] for nd in mem) + 8
        clusters.append({"module": phase, "type": f"{len(mem)} kernels", "depth": 1, "x": round(x0, 1),
                         "y": round(y0, 1), "w": round(x1 - x0, 1), "h": round(y1 - y0, 1)})
    fused = sum(1 for nd in nodes.values() if len(nd["ops"]) > 1)
    return {"nodes": list(nodes.values()), "edges": edges, "clusters": clusters, "groups": {},
            "width": lay["width"], "height": lay["height"],
            "stats": {"ops": sum(len(nd["ops"]) for nd in nodes.values()), "leaves": 0, "nodes": len(nodes),
                      "edges": len(edges), "folded": fused, "max_depth": 0, "grad_range": None,
                      "launches_before": plan["launches_before"], "launches_after": plan["launches_after"]},
            "origin": {}, "origin_names": {}}


class FusedGraphView(GraphView):
    """GraphView of a compiled function's plan: one node per kernel, fused kernels as boxes
    listing the ops they replaced."""

    def __init__(self, compiled, height=520, title=None):
        data = fused_graph_data(compiled)
        st = data["stats"]
        super().__init__(data, height=height, title=title or (
            f"compiled plan: {st['launches_before']} eager launches -> {st['nodes']} steps, "
            f"{st['folded']} fused kernels"))

    def __repr__(self):
        st = self.graph["stats"]
        return (f"FusedGraphView(steps={st['nodes']}, fused={st['folded']}, "
                f"eager_launches={st['launches_before']})")
