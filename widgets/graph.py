"""The autograd graph as data: names, module folding, gradient colours, layout, SVG.

`graph_data(tensor, module=None, depth=1, grads=True, saved=True)` returns plain dicts
(no frontend needed); `GraphModel` keeps the walked graph and its statistics so that a
widget can re-fold and re-lay it out cheaply; `render_svg(data)` draws it as SVG text.

Only the engine's public API is used: `engine.autograd.graph.walk` / `record_backward`,
`Module.named_modules` / `named_parameters`, `Tensor.grad`, `Tensor.grad_fn` and the
nodes' `saved_tensors` / `next_functions` (as PyTorch exposes them).
"""
import math
from xml.sax.saxutils import escape

from engine import no_grad
from engine.autograd.graph import walk

from . import _util as U
from .layout import NODE_H, layered_layout

__all__ = ["graph_data", "GraphModel", "render_svg"]

CHAR_W = 6.6
MIN_W = 56
MAX_LABEL = 34


def _root_module(infos):
    """The outermost module shared by every module stack in the graph, or None."""
    root = None
    for n in infos:
        if n.modules:
            m = n.modules[0]
            if root is None:
                root = m
            elif m is not root:
                return None
    return root


def _is_finite(s):
    return s is None or s.get("finite", True)


def _compact(s):
    """The per-node stats sent to the frontend (no histogram or heatmap)."""
    if s is None:
        return None
    return {k: v for k, v in s.items() if k not in ("hist", "heat")}


class GraphModel:
    """The graph behind `root` with names, module paths and (optional) value/grad stats.

    root      a Tensor (or a graph node)
    module    the nn.Module that produced it (found from the graph when omitted)
    names     {name: tensor} for inputs that are not parameters
    saved     read forward values from the nodes' saved tensors (before backward, or with
              retain_graph) for hover stats and non-finite detection
    grads     read leaf `.grad`s (and the recording's gradients) for colours
    recording a list of BackwardEvent from `record_backward()`: gradients of every node
    """

    def __init__(self, root, module=None, names=None, saved=True, grads=True, recording=None):
        self.root = root
        self.infos = walk(root)
        self.by_node = {n.node: n.id for n in self.infos}
        self.module = module if module is not None else _root_module(self.infos)
        self.want_grads = grads
        mod_names, self.mod_types, param_names = {}, {}, {}
        if self.module is not None:
            for p, m in self.module.named_modules():
                mod_names[id(m)] = p
                self.mod_types[p] = type(m).__name__
            for p, t in self.module.named_parameters():
                param_names[id(t)] = p
        extra = {id(t): k for k, t in (names or {}).items()}
        # module path stacks of the op nodes, and the stack position of each path
        extra_mods = {}
        self.depth_of = {}
        self.paths = []
        for n in self.infos:
            ps = []
            for m in n.modules:
                p = mod_names.get(id(m))
                if p is None and m is not self.module:
                    # a module outside `module`: named by type and order of appearance
                    p = f"<{type(m).__name__}#{sum(1 for k in extra_mods.values() if k[0] == type(m).__name__)}>"
                    p = extra_mods.setdefault(id(m), (type(m).__name__, p))[1]
                    mod_names[id(m)] = p
                    self.mod_types.setdefault(p, type(m).__name__)
                if p:
                    ps.append(p)
            for i, p in enumerate(ps):
                d = self.depth_of.get(p)
                self.depth_of[p] = i + 1 if d is None else min(d, i + 1)
            self.paths.append(ps)
        self.labels, self.kinds, self.full_names = [], [], []
        unnamed = {}
        for n in self.infos:
            if n.is_leaf:
                t = n.tensor
                name = param_names.get(id(t)) or extra.get(id(t))
                kind = "param" if (n.is_parameter or id(t) in param_names) else "input"
                if name is None:  # unnamed leaves: input, input1, input2, ... (param, param1, ...)
                    base = "param" if kind == "param" else "input"
                    k = unnamed[base] = unnamed.get(base, -1) + 1
                    name = base if k == 0 else f"{base}{k}"
                if id(t) in param_names:  # a parameter folds with the module that owns it
                    parts = name.split(".")
                    pre = [".".join(parts[:i]) for i in range(1, len(parts))]
                    self.paths[n.id] = sorted((p for p in pre if p in self.depth_of), key=self.depth_of.get)
                self.labels.append(name)
                self.full_names.append(name)
                self.kinds.append(kind)
            else:
                self.labels.append(n.op)
                self.full_names.append(n.name)
                self.kinds.append("output" if n.id == 0 else "op")
        self.values = [None] * len(self.infos)
        self.grads = [None] * len(self.infos)
        self.edge_grads = {}
        self.origin = {}
        if saved:
            self._read_values()
        self.refresh(recording)

    # ---- statistics ---------------------------------------------------------------------
    def _read_values(self):
        from engine import Tensor
        vals = {}
        for n in self.infos:
            if n.is_leaf:
                vals[n.id] = n.tensor
        if isinstance(self.root, Tensor) and self.infos:
            vals.setdefault(0, self.root)
        with no_grad():
            for n in self.infos:
                if n.is_leaf:
                    continue
                try:
                    ts = n.node.saved_tensors
                except Exception:  # freed by backward, or modified in place
                    continue
                for t in ts:
                    if not isinstance(t, Tensor):
                        continue
                    j = self.by_node.get(t.grad_fn)
                    if j is not None and j not in vals and tuple(t.shape) == self.infos[j].shape:
                        vals[j] = t
        for j, t in vals.items():
            self.values[j] = U.summary(t, detail=True)
        self._origin_forward()

    def _origin_forward(self):
        self.origin.pop("forward", None)
        for n in reversed(self.infos):  # forward order: producers first
            v = self.values[n.id]
            if v is None or v.get("finite", True):
                continue
            if all(_is_finite(self.values[i]) for i in n.inputs):
                self.origin["forward"] = n.id
                return

    def refresh(self, recording=None):
        """Re-read the leaves' .grad and, if given, a backward recording's gradients."""
        if not self.want_grads:
            return
        for n in self.infos:
            if n.is_leaf and n.tensor.grad is not None:
                self.grads[n.id] = U.summary(n.tensor.grad, detail=True)
        if recording is None:
            return
        self.origin.pop("backward", None)
        for ev in recording:
            j = self.by_node.get(ev.node)
            if j is None:
                continue
            gout = next((g for g in ev.grad_outputs if g is not None), None)
            if gout is not None and not self.infos[j].is_leaf:
                self.grads[j] = U.summary(gout, detail=True)
            gin = [g for (nx, _), g in zip(ev.node.next_functions, ev.grad_inputs) if nx is not None]
            ok_in = all(g is None or _is_finite(U.summary(g)) for g in ev.grad_outputs)
            for k, (src, g) in enumerate(zip(self.infos[j].inputs, gin)):
                if g is None:
                    continue
                s = U.summary(g)
                self.edge_grads[(src, j, k)] = s
                if ok_in and not s.get("finite", True) and "backward" not in self.origin:
                    self.origin["backward"] = j

    # ---- folding --------------------------------------------------------------------------
    def is_expanded(self, path, depth, expanded=(), collapsed=()):
        if path in expanded:
            return True
        if path in collapsed:
            return False
        return depth is None or self.depth_of.get(path, 1) <= depth

    def groups(self):
        """{path: {'type', 'depth', 'ops', 'params'}} of every module seen in the graph."""
        out = {}
        for n, ps in zip(self.infos, self.paths):
            for p in ps:
                g = out.setdefault(p, {"type": self.mod_types.get(p, "?"), "depth": self.depth_of.get(p, 1),
                                       "ops": 0, "params": 0})
                g["params" if n.is_leaf else "ops"] += 1
        return out

    def layout(self, depth=1, expanded=(), collapsed=()):
        """The laid-out graph as plain dicts: {'nodes', 'edges', 'clusters', 'groups', 'width',
        'height', 'stats', 'origin'}.  Modules deeper than `depth` (stack positions, 1 =
        the root's children) are folded unless in `expanded`; those in `collapsed` are
        folded whatever their depth.  depth=None expands everything."""
        exp, col = set(expanded), set(collapsed)
        vis = []        # visible id per node
        members = {}    # visible id -> list of node ids
        order = []
        cache = {}
        for n, ps in zip(self.infos, self.paths):
            key = None
            for p in ps:
                e = cache.get(p)
                if e is None:
                    e = cache[p] = self.is_expanded(p, depth, exp, col)
                if not e:
                    key = "g:" + p
                    break
            if key is None:
                key = f"n{n.id}"
            vis.append(key)
            if key not in members:
                members[key] = []
                order.append(key)
            members[key].append(n.id)
        # edges (producer -> consumer), merged between the same visible pair
        emap = {}
        for n in self.infos:
            dst = vis[n.id]
            for k, src_id in enumerate(n.inputs):
                src = vis[src_id]
                if src == dst:
                    continue
                e = emap.get((src, dst))
                g = self.edge_grads.get((src_id, n.id, k)) or self.grads[src_id]
                if e is None:
                    emap[(src, dst)] = e = {"source": src, "target": dst, "count": 0, "grad": None}
                e["count"] += 1
                if g is not None and (e["grad"] is None or _rms(g) > _rms(e["grad"])):
                    e["grad"] = g
        nodes = {}
        for key in order:
            ids = members[key]
            if key.startswith("g:"):
                p = key[2:]
                ops = sum(1 for i in ids if not self.infos[i].is_leaf)
                prm = len(ids) - ops
                grads = [self.grads[i] for i in ids if self.grads[i] is not None]
                g = max(grads, key=_rms) if grads else None  # a non-finite one counts as the biggest
                nonfin = any(not _is_finite(self.grads[i]) or not _is_finite(self.values[i]) for i in ids)
                sub = f"{ops} ops" + (f", {prm} params" if prm else "")
                nodes[key] = {"id": key, "kind": "group", "label": f"{p}: {self.mod_types.get(p, '?')}",
                              "sub": sub, "module": p, "count": ops, "params": prm, "name": self.mod_types.get(p, "?"),
                              "value": None, "grad": _compact(g), "nonfinite": nonfin,
                              "origin": any(i in self.origin.values() for i in ids)}
            else:
                i = ids[0]
                info = self.infos[i]
                v, g = self.values[i], self.grads[i]
                nodes[key] = {"id": key, "kind": self.kinds[i], "label": _short(self.labels[i]),
                              "sub": U.fmt_shape(info.shape), "name": self.full_names[i],
                              "module": self.paths[i][-1] if self.paths[i] else "",
                              "value": _compact(v), "grad": _compact(g),
                              "nonfinite": not (_is_finite(v) and _is_finite(g)),
                              "origin": i in self.origin.values()}
        widths = {k: _width(nd) for k, nd in nodes.items()}
        edges = list(emap.values())
        lay = layered_layout(order, widths, [(e["source"], e["target"]) for e in edges])
        # colours: log10 of the gradient's rms
        rng = U.log_scale([_rms(nd["grad"]) for nd in nodes.values()] + [_rms(e["grad"]) for e in edges])
        for k, nd in nodes.items():
            cx, y = lay["pos"][k]
            nd.update(x=cx, y=y, w=widths[k], h=NODE_H, layer=lay["layer"][k])
            nd["color"] = U.RED if nd["nonfinite"] else (U.log_colour(_rms(nd["grad"]), rng)
                                                        if nd["grad"] else None)
        for e, pts, back in zip(edges, lay["edges"], lay["back"]):
            e["points"] = [list(p) for p in pts]
            e["back"] = back
            gr = e.pop("grad")
            e["grad_rms"] = U.num(_rms(gr)) if gr else None
            e["color"] = (U.RED if gr and not gr.get("finite", True) else U.log_colour(_rms(gr), rng)) if gr else None
        clusters = self._clusters(nodes, exp, col, depth)
        groups = self.groups()
        for p, g in groups.items():
            g["expanded"] = cache.get(p, self.is_expanded(p, depth, exp, col))
        origin = {k: f"n{v}" if vis[v] == f"n{v}" else vis[v] for k, v in self.origin.items()}
        origin_names = {k: self.full_names[v] for k, v in self.origin.items()}
        return {"nodes": list(nodes.values()), "edges": edges, "clusters": clusters, "groups": groups,
                "width": lay["width"], "height": lay["height"],
                "stats": {"ops": sum(1 for n in self.infos if not n.is_leaf),
                          "leaves": sum(1 for n in self.infos if n.is_leaf),
                          "nodes": len(nodes), "edges": len(edges),
                          "folded": sum(1 for k in nodes if k.startswith("g:")),
                          "max_depth": max(self.depth_of.values(), default=0),
                          "grad_range": [10 ** rng[0], 10 ** rng[1]] if rng else None},
                "origin": origin, "origin_names": origin_names}

    def _clusters(self, nodes, exp, col, depth):
        """Boxes around the visible members of each expanded module."""
        boxes = {}
        for nd in nodes.values():
            if nd["kind"] == "group":
                path = nd["module"]
                chain = _ancestors(path, self.depth_of)
            else:
                i = int(nd["id"][1:])
                chain = self.paths[i]
            x0, y0 = nd["x"] - nd["w"] / 2, nd["y"]
            x1, y1 = nd["x"] + nd["w"] / 2, nd["y"] + nd["h"]
            for p in chain:
                if p == nd.get("module") and nd["kind"] == "group":
                    continue
                b = boxes.get(p)
                if b is None:
                    boxes[p] = [x0, y0, x1, y1]
                else:
                    b[0], b[1] = min(b[0], x0), min(b[1], y0)
                    b[2], b[3] = max(b[2], x1), max(b[3], y1)
        out = []
        for p, (x0, y0, x1, y1) in boxes.items():
            d = self.depth_of.get(p, 1)
            pad = max(4, 12 - 3 * d)
            out.append({"module": p, "type": self.mod_types.get(p, "?"), "depth": d,
                        "x": round(x0 - pad, 1), "y": round(y0 - pad - 12, 1),
                        "w": round(x1 - x0 + 2 * pad, 1), "h": round(y1 - y0 + 2 * pad + 12, 1)})
        out.sort(key=lambda c: (c["depth"], c["module"]))
        return out

    def detail(self, vid, members=None):
        """Full statistics (with histogram and heatmap) of a visible node id."""
        if vid.startswith("n"):
            i = int(vid[1:])
            info = self.infos[i]
            ins = [self.labels[j] for j in info.inputs]
            return {"id": vid, "label": self.labels[i], "name": self.full_names[i], "kind": self.kinds[i],
                    "shape": list(info.shape) if info.shape is not None else None, "dtype": info.dtype,
                    "module": ".".join(self.paths[i][-1:]) if self.paths[i] else "", "inputs": ins,
                    "saved": [[list(s), d] for s, d in info.saved], "value": self.values[i], "grad": self.grads[i]}
        p = vid[2:]
        ids = [i for i, ps in enumerate(self.paths) if p in ps]
        ops = {}
        for i in ids:
            if not self.infos[i].is_leaf:
                ops[self.infos[i].op] = ops.get(self.infos[i].op, 0) + 1
        params = [{"name": self.labels[i], "shape": list(self.infos[i].shape), "grad": _compact(self.grads[i])}
                  for i in ids if self.infos[i].is_leaf]
        return {"id": vid, "label": p, "name": self.mod_types.get(p, "?"), "kind": "group", "ops": ops,
                "params": params}


def _ancestors(path, depth_of):
    parts = path.split(".")
    pre = [".".join(parts[:i]) for i in range(1, len(parts))]
    return [p for p in pre if p in depth_of]


def _rms(s):
    if not s:
        return 0.0
    if not s.get("finite", True):
        return math.inf
    return s.get("rms") or 0.0


def _short(label):
    return label if len(label) <= MAX_LABEL else "…" + label[-(MAX_LABEL - 1):]


def _width(nd):
    n = max(len(nd["label"]), len(nd["sub"]))
    return max(MIN_W, round(n * CHAR_W + 16))


def graph_data(tensor, module=None, depth=1, grads=True, saved=True, expanded=(), collapsed=(), names=None,
               recording=None):
    """The laid-out autograd graph behind `tensor` as plain dicts (see GraphModel.layout)."""
    g = GraphModel(tensor, module=module, names=names, saved=saved, grads=grads, recording=recording)
    return g.layout(depth=depth, expanded=expanded, collapsed=collapsed)


# ---- SVG -----------------------------------------------------------------------------------
FILL = {"op": "#eef2ff", "param": "#fef3c7", "input": "#e0f2fe", "output": "#dcfce7", "group": "#f3f4f6"}
STROKE = {"op": "#6366f1", "param": "#d97706", "input": "#0284c7", "output": "#16a34a", "group": "#4b5563"}


def edge_path(points):
    """SVG path data through the points with vertical cubic segments."""
    (x, y), rest = points[0], points[1:]
    d = [f"M{x:g},{y:g}"]
    for nx, ny in rest:
        dy = (ny - y) / 2 if ny > y else 40
        d.append(f"C{x:g},{y + dy:g} {nx:g},{ny - dy:g} {nx:g},{ny:g}")
        x, y = nx, ny
    return " ".join(d)


def _tip(nd):
    lines = [f"{nd['name']} {nd['sub']}"]
    if nd.get("module"):
        lines.append(f"module: {nd['module']}")
    if nd.get("value"):
        lines.append("value: " + U.describe(nd["value"]))
    if nd.get("grad"):
        lines.append("grad: " + U.describe(nd["grad"]) + f" rms={U.fmt(_rms(nd['grad']))}")
    return "\n".join(lines)


def render_svg(data, title=None):
    """Standalone SVG text of a graph_data() result (used for export and the static fallback)."""
    W, H = data["width"], data["height"] + (24 if title else 0)
    oy = 24 if title else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="clgrad-graph" width="{W:g}" height="{H:g}" '
           f'viewBox="0 0 {W:g} {H:g}" font-family="ui-monospace, SFMono-Regular, Menlo, monospace" '
           f'font-size="11">',
           '<defs><marker id="clg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
           f'<rect x="0" y="0" width="{W:g}" height="{H:g}" fill="#ffffff"/>']
    if title:
        out.append(f'<text x="12" y="17" font-size="13" font-weight="bold">{escape(title)}</text>')
    out.append(f'<g transform="translate(0,{oy})">')
    for c in data["clusters"]:
        out.append(f'<g class="clg-cluster"><rect x="{c["x"]:g}" y="{c["y"]:g}" width="{c["w"]:g}" '
                   f'height="{c["h"]:g}" rx="8" fill="#6366f1" fill-opacity="0.04" stroke="#a5b4fc" '
                   f'stroke-dasharray="4 3"/><text x="{c["x"] + 6:g}" y="{c["y"] + 11:g}" fill="#4f46e5" '
                   f'font-size="10">{escape(c["module"])}: {escape(c["type"])}</text></g>')
    for e in data["edges"]:
        col = e["color"] or "#9ca3af"
        wdt = 1.2 + min(e["count"] - 1, 4) * 0.5
        dash = ' stroke-dasharray="3 3"' if e["back"] else ""
        out.append(f'<path class="clg-edge" d="{edge_path(e["points"])}" fill="none" stroke="{col}" '
                   f'stroke-width="{wdt:g}"{dash} marker-end="url(#clg-arrow)"/>')
    for nd in data["nodes"]:
        x0, y0 = nd["x"] - nd["w"] / 2, nd["y"]
        fill = FILL[nd["kind"]]
        stroke = U.RED if nd["nonfinite"] else (nd["color"] or STROKE[nd["kind"]])
        sw = 3 if nd["origin"] else (2.2 if nd["color"] else 1.2)
        rx = 4 if nd["kind"] == "group" else 10 if nd["kind"] in ("param", "input") else 6
        dash = ' stroke-dasharray="5 2"' if nd["kind"] == "group" else ""
        out.append(f'<g class="clg-node clg-{nd["kind"]}" data-id="{escape(nd["id"])}"><title>{escape(_tip(nd))}'
                   f'</title><rect x="{x0:g}" y="{y0:g}" width="{nd["w"]:g}" height="{nd["h"]:g}" rx="{rx}" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="{sw:g}"{dash}/>'
                   f'<text x="{nd["x"]:g}" y="{y0 + 14:g}" text-anchor="middle" font-weight="bold">'
                   f'{escape(nd["label"])}</text><text x="{nd["x"]:g}" y="{y0 + 27:g}" text-anchor="middle" '
                   f'fill="#4b5563" font-size="10">{escape(nd["sub"])}</text></g>')
    out.append("</g></svg>")
    return "".join(out)


# ---- the widget -------------------------------------------------------------------------------
import anywidget  # noqa: E402
import traitlets as T  # noqa: E402


def esm(name):
    """The ES module of a widget: the shared helpers followed by the widget's own file."""
    return (U.STATIC / "common.js").read_text() + "\n" + (U.STATIC / f"{name}.js").read_text()


class GraphView(anywidget.AnyWidget):
    """The autograd graph behind a tensor, laid out as a layered DAG with module folding.

    GraphView(tensor, module=None, depth=1, names=None, saved=True, grads=True, recording=None,
              height=520, title=None)

    Click a folded module to expand it, a module box's label to fold it again, an op to see
    its value and gradient in the side panel; wheel zooms, drag pans.  After a backward pass
    (`gv.backward()` records one, or call `gv.refresh()` after your own), nodes and edges
    are coloured by gradient magnitude (log scale) and non-finite values are red, with the
    first op that produced them outlined.  `to_svg()` gives the drawing as SVG text; the
    output bundle carries it too, so viewers without a kernel still show the graph."""
    _esm = esm("graph")
    graph = T.Dict().tag(sync=True)
    depth = T.Int(1, allow_none=True).tag(sync=True)
    selected = T.Unicode("").tag(sync=True)
    highlight = T.Unicode("").tag(sync=True)
    detail = T.Dict().tag(sync=True)
    height = T.Int(520).tag(sync=True)

    static_fallback = True      # add the SVG as text/html to the output bundle
    static_max_nodes = 1500     # ... when at most this many nodes are shown

    def __init__(self, tensor, module=None, depth=1, names=None, saved=True, grads=True, recording=None,
                 height=520, title=None):
        fixed = tensor if isinstance(tensor, dict) else None  # a graph_data() result: drawn as is
        if isinstance(tensor, GraphModel) or fixed is not None:
            gm = None if fixed is not None else tensor
        else:
            gm = GraphModel(tensor, module=module, names=names, saved=saved, grads=grads, recording=recording)
        super().__init__(depth=depth, height=height)
        self.model = gm
        self.title = title
        self._names, self._saved = names, saved
        self.expanded, self.collapsed = set(), set()
        if fixed is not None:
            self.graph = fixed
        else:
            self._relayout()
        self.observe(self._on_depth, names="depth")
        self.on_msg(self._on_msg)

    # ---- state -------------------------------------------------------------------------------
    def _on_depth(self, change):
        self.expanded.clear()
        self.collapsed.clear()
        self._relayout()

    def _relayout(self):
        if self.model is None:
            raise RuntimeError("this GraphView draws a fixed graph_data() result; pass the tensor to fold and unfold")
        self.graph = self.model.layout(self.depth, self.expanded, self.collapsed)
        if self.selected and not any(n["id"] == self.selected for n in self.graph["nodes"]):
            self.select("")

    def _on_msg(self, widget, content, buffers):
        t = content.get("type")
        if t == "toggle":
            self.toggle(content["module"])
        elif t == "select":
            self.select(content.get("id") or "")
        elif t == "depth":
            self.depth = content.get("depth")

    def expand(self, module):
        """Show the ops of a module (a path such as 'blocks.0.attn')."""
        self.collapsed.discard(module)
        self.expanded.add(module)
        self._relayout()

    def collapse(self, module):
        """Fold a module into one node."""
        self.expanded.discard(module)
        self.collapsed.add(module)
        self._relayout()

    def toggle(self, module):
        if self.is_expanded(module):
            self.collapse(module)
        else:
            self.expand(module)

    def is_expanded(self, module):
        return self.model.is_expanded(module, self.depth, self.expanded, self.collapsed)

    def select(self, node_id):
        """Open the detail panel of a node ('n3', 'g:blocks.0'); '' closes it."""
        self.selected = node_id
        if not node_id:
            self.detail = {}
        elif self.model is not None:
            self.detail = _jsonable(self.model.detail(node_id))
        else:
            n = next((n for n in self.graph["nodes"] if n["id"] == node_id), None)
            self.detail = _jsonable({**n, "label": n["label"]}) if n else {}

    def refresh(self, recording=None):
        """Re-read gradients (leaf .grad, and a backward recording's) and redraw."""
        self.model.refresh(recording)
        self._relayout()
        if self.selected:
            self.select(self.selected)

    def update(self, tensor, recording=None):
        """Show the graph behind a new tensor (e.g. this step's loss), keeping the module,
        names and the folding the user chose."""
        if self.model is None:
            raise RuntimeError("this GraphView draws a fixed graph_data() result; pass the tensor to update it")
        old = self.model
        self.model = GraphModel(tensor, module=old.module, names=self._names, saved=self._saved,
                                grads=old.want_grads, recording=recording)
        self._relayout()
        if self.selected:
            self.select(self.selected)

    def backward(self, gradient=None, retain_graph=None):
        """Run backward from the graph's root, recording every node's gradient, and recolour."""
        from engine.autograd.graph import record_backward
        with record_backward() as events:
            self.model.root.backward(gradient, retain_graph=retain_graph)
        self.refresh(events)
        return events

    # ---- output --------------------------------------------------------------------------------
    @property
    def nodes(self):
        return self.graph["nodes"]

    @property
    def edges(self):
        return self.graph["edges"]

    def node(self, label):
        """The first visible node whose label (op name, parameter name or module) is `label`."""
        for n in self.graph["nodes"]:
            if n["label"] == label or n["id"] == label or n.get("module") == label and n["kind"] == "group":
                return n
        raise KeyError(label)

    def to_svg(self):
        """The graph as standalone SVG text."""
        return render_svg(self.graph, title=self.title)

    def save_svg(self, path):
        from pathlib import Path
        Path(path).write_text(self.to_svg())

    def __repr__(self):
        st = self.graph["stats"]
        return f"GraphView(nodes={st['nodes']}, edges={st['edges']}, folded={st['folded']})"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, tuple):
            data, meta = data
        else:
            meta = None
        data = dict(data or {})
        data["text/plain"] = repr(self)
        if self.static_fallback:
            if len(self.graph["nodes"]) <= self.static_max_nodes:
                data["text/html"] = f'<div class="clgrad-static">{self.to_svg()}</div>'
            else:
                data["text/html"] = f"<pre>{escape(repr(self))} (too big for a static drawing)</pre>"
        return (data, meta) if meta is not None else data


def _jsonable(x):
    """Replace tuples by lists (traitlets Dict syncs JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
