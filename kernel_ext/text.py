"""Plain-text (and simple HTML) renderings the magics fall back to outside Jupyter or
without the widgets package: device tables, the autograd graph, backward steps, gradient
flow and kernel-profile timelines.  Built only on engine's public API."""
import html

from .display import fmt_num, shape_str


class Rich:
    """A displayable result: text/plain for terminals, text/html for notebooks.
    `data` keeps the structured content the text was made from (tests assert on it)."""

    def __init__(self, text, html_=None, data=None):
        self.text, self.html, self.data = text, html_, data

    def __repr__(self):
        return self.text

    def _repr_pretty_(self, p, cycle):
        p.text(self.text)

    def _repr_html_(self):
        return self.html if self.html is not None else f"<pre>{html.escape(self.text)}</pre>"


def table_text(head, rows, right=()):
    rows = [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def fmt(r):
        return "  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([fmt(head), "  ".join("-" * x for x in w)] + [fmt(r) for r in rows])


def table_html(head, rows, right=(), cls="clgrad-table"):
    st = 'style="padding:1px 10px 1px 0;font-family:monospace;text-align:{}"'
    h = "".join(f'<th {st.format("left")}>{html.escape(str(c))}</th>' for c in head)
    body = "".join("<tr>" + "".join(f'<td {st.format("right" if i in right else "left")}>{html.escape(str(c))}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{cls}" style="border-collapse:collapse"><tr>{h}</tr>{body}</table>'


def _mem(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# ---- devices --------------------------------------------------------------------------------
DEVICE_HEAD = ["", "device", "name", "vendor", "type", "CUs", "global mem", "local mem", "max WG", "fp64", "fp16",
               "driver", "platform", "P:D"]


def devices_rich(devs):
    rows = [["*" if d["default"] else "", d["device"], d["name"], d["vendor"], d["type"], d["compute_units"],
             _mem(d["global_mem"]), _mem(d["local_mem"]), d["max_work_group_size"], "yes" if d["fp64"] else "no",
             "yes" if d["fp16"] else "no", d["driver_version"], d["platform"], d["spec"]] for d in devs]
    right = (5, 6, 7, 8)
    foot = f"{len(devs)} OpenCL device(s); * = default (change it with %cl_device SPEC)"
    return Rich(table_text(DEVICE_HEAD, rows, right) + "\n" + foot,
                table_html(DEVICE_HEAD, rows, right, "clgrad-devices") + f"<div>{html.escape(foot)}</div>", devs)


def device_line(d):
    return (f"{d['device']}  {d['name']} ({d['type']}, {d['platform']}, {d['compute_units']} CUs, "
            f"{_mem(d['global_mem'])})")


# ---- autograd graph -----------------------------------------------------------------------------
def module_names(root):
    """id(module) -> dotted name ('' for root) for `root` and its submodules."""
    return {id(m): n for n, m in root.named_modules()} if root is not None else {}


def param_names(root):
    return {id(p): n for n, p in root.named_parameters()} if root is not None else {}


def graph_model(targets, root=None, var_names=None, grads=False, saved=False, depth=None):
    """Nodes and edges (plain dicts) of the graph behind `targets` [(label, tensor)].

    node: id, name ('MulBackward0'), op, shape, dtype, is_leaf, is_parameter, label (parameter
    path like 'fc.weight', a variable name, or the target's label), module (dotted path of the
    innermost module that made it; a parameter's owner), stack (the module paths it sits in,
    outermost first, root excluded), saved [(shape, dtype)] with saved=True, grad (shape, norm)
    for leaves with grads=True, members (nodes folded into it).
    edges: [src, dst] = gradient flows from src to its input dst.
    `depth` folds, as the graph widget does, every module called deeper than `depth` levels
    below the root (1 = the root's children) into one node: depth=0 folds the root's children."""
    from engine.autograd.graph import walk
    mnames = module_names(root)
    pnames = param_names(root)
    var_names = var_names or {}
    ids, nodes, edges = {}, [], []
    depth_of = {}
    for label, t in targets:
        infos = walk(t)
        local = {}
        for info in infos:
            key = id(info.node)
            if key in ids:
                local[info.id] = ids[key]
                continue
            nid = len(nodes)
            ids[key] = local[info.id] = nid
            lab, mod, stack = "", "", []
            if info.is_leaf:
                tt = info.tensor
                lab = pnames.get(id(tt)) or var_names.get(id(tt), "")
                if lab and id(tt) in pnames and "." in lab:
                    mod = lab.rsplit(".", 1)[0]
            else:
                stack = [mnames[id(m)] for m in info.modules if mnames.get(id(m))]
                for i, p in enumerate(stack):
                    depth_of[p] = min(depth_of.get(p, i + 1), i + 1)
                mod = stack[-1] if stack else ""
            if info.id == 0:
                lab = label if not lab else f"{label} = {lab}"
            n = {"id": nid, "name": info.name, "op": info.op, "shape": info.shape, "dtype": info.dtype,
                 "is_leaf": info.is_leaf, "is_parameter": info.is_parameter, "label": lab, "module": mod,
                 "stack": stack, "members": 1}
            if saved:
                n["saved"] = list(info.saved)
            if grads and info.is_leaf:
                g = info.tensor.grad
                n["grad"] = None if g is None else (tuple(g.shape), float(g.detach().float().norm().item()))
            nodes.append(n)
        for info in infos:
            for dst in info.inputs:
                e = [local[info.id], local[dst]]
                if e not in edges:
                    edges.append(e)
    for n in nodes:  # a parameter sits in the modules above its owner
        if n["is_leaf"] and n["module"]:
            parts = n["module"].split(".")
            pre = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            n["stack"] = sorted((p for p in pre if p in depth_of), key=depth_of.get)
    if depth is not None:
        nodes, edges = _fold(nodes, edges, depth, depth_of, root)
    return {"nodes": nodes, "edges": edges}


def _fold(nodes, edges, depth, depth_of, root):
    groups, out, remap = {}, [], {}
    types = {n: type(m).__name__ for n, m in root.named_modules()} if root is not None else {}
    for n in nodes:
        path = next((p for p in n["stack"] if depth_of[p] > depth), None)
        if path is not None:
            g = groups.get(path)
            if g is None:
                g = groups[path] = {"id": len(out), "name": types.get(path, "Module"), "op": "module",
                                    "shape": None, "dtype": None, "is_leaf": False, "is_parameter": False,
                                    "label": path, "module": path, "stack": n["stack"][:n["stack"].index(path) + 1],
                                    "members": 0}
                out.append(g)
            g["members"] += 1
            remap[n["id"]] = g["id"]
        else:
            m = dict(n, id=len(out))
            remap[n["id"]] = m["id"]
            out.append(m)
    new_edges = []
    for s, d in edges:
        e = [remap[s], remap[d]]
        if e[0] != e[1] and e not in new_edges:
            new_edges.append(e)
    return out, new_edges


def graph_rich(model, title):
    nodes, edges = model["nodes"], model["edges"]
    ins = {n["id"]: [] for n in nodes}
    for s, d in edges:
        ins[s].append(d)
    has_saved = any("saved" in n for n in nodes)
    has_grad = any("grad" in n for n in nodes)
    head = ["#", "node", "op", "shape", "dtype", "tensor / module", "inputs"]
    if has_saved:
        head.append("saved")
    if has_grad:
        head.append("grad")
    rows = []
    for n in nodes:
        who = n["label"] or (f"in {n['module']}" if n["module"] else "")
        if n["op"] == "module":
            who = f"{n['label']} ({n['members']} nodes)"
        r = [n["id"], n["name"], n["op"], "" if n["shape"] is None else shape_str(n["shape"]), n["dtype"] or "",
             who, ", ".join(map(str, ins[n["id"]]))]
        if has_saved:
            r.append(" ".join(shape_str(s) for s, _ in n.get("saved", [])))
        if has_grad:
            g = n.get("grad", "")
            r.append("" if g == "" else "None" if g is None else f"{shape_str(g[0])} |g|={fmt_num(g[1])}")
        rows.append(r)
    head_line = f"{title}: {len(nodes)} nodes, {len(edges)} edges (gradients flow from a node to its inputs)"
    return Rich(head_line + "\n" + table_text(head, rows, right=(0,)),
                f"<div><b>{html.escape(head_line)}</b></div>" + table_html(head, rows, (0,), "clgrad-graph"), model)


# ---- backward steps ------------------------------------------------------------------------
def _norms(tensors):
    """Norms of a list of tensors (None allowed) with one device read."""
    import engine
    live = [t for t in tensors if t is not None]
    if not live:
        return [None] * len(tensors)
    with engine.no_grad():
        vals = engine.stack([t.detach().float().norm() for t in live]).numpy().tolist()
    it = iter(vals)
    return [None if t is None else next(it) for t in tensors]


def backprop_rich(events, title, labels=None, limit=200):
    labels = labels or {}
    evs = list(events)[:limit]
    flat = []
    for ev in evs:
        flat.extend(ev.grad_outputs)
        flat.extend(ev.grad_inputs)
    norms = iter(_norms(flat))
    rows, data = [], []

    def desc(gs):
        out = []
        for g in gs:
            nrm = next(norms)
            out.append("-" if g is None else f"{shape_str(g.shape)} |{fmt_num(nrm)}|")
        return ", ".join(out)
    for i, ev in enumerate(evs):
        lab = labels.get(id(ev.tensor), "") if ev.is_leaf else ""
        go, gi = desc(ev.grad_outputs), desc(ev.grad_inputs)
        rows.append([i + 1, ev.name, lab, go, gi])
        data.append({"step": i + 1, "name": ev.name, "label": lab})
    more = f" (first {limit} shown)" if len(events) > limit else ""
    head_line = f"{title}: {len(events)} backward steps{more}"
    head = ["step", "node", "leaf", "grad in (shape |norm|)", "grad out to inputs"]
    return Rich(head_line + "\n" + table_text(head, rows, right=(0,)),
                f"<div><b>{html.escape(head_line)}</b></div>" + table_html(head, rows, (0,), "clgrad-backprop"), data)


# ---- gradient flow ---------------------------------------------------------------------------
def gradflow_rich(named_params, title):
    """Per-parameter gradient statistics (one device read for all of them)."""
    import engine
    names, grads, params = [], [], []
    for n, p in named_params:
        names.append(n)
        grads.append(p.grad)
        params.append(p)
    live = [(g, p) for g, p in zip(grads, params) if g is not None]
    vals = []
    if live:
        with engine.no_grad():
            parts = []
            for g, p in live:
                g32, p32 = g.detach().float(), p.detach().float()
                parts += [g32.norm(), g32.abs().mean(), g32.abs().max(), p32.norm()]
            vals = engine.stack(parts).numpy().tolist()
    it = iter(vals)
    rows, data = [], []
    for n, g, p in zip(names, grads, params):
        if g is None:
            rows.append([n, shape_str(p.shape), "None", "", "", ""])
            data.append({"name": n, "norm": None})
            continue
        nrm, mean, mx, pn = next(it), next(it), next(it), next(it)
        flag = " !" if nrm != nrm or nrm in (float("inf"),) else (" (zero)" if nrm == 0 else "")
        rows.append([n, shape_str(p.shape), fmt_num(nrm) + flag, fmt_num(mean), fmt_num(mx),
                     fmt_num(nrm / pn) if pn else ""])
        data.append({"name": n, "norm": nrm, "mean_abs": mean, "max_abs": mx})
    head = ["parameter", "shape", "|grad|", "mean |g|", "max |g|", "|g|/|w|"]
    return Rich(title + "\n" + table_text(head, rows, right=(2, 3, 4, 5)),
                f"<div><b>{html.escape(title)}</b></div>" + table_html(head, rows, (2, 3, 4, 5), "clgrad-gradflow"),
                data)


# ---- kernel profile ----------------------------------------------------------------------------
def profile_rich(prof, sort_by="time", timeline=False, limit=60):
    stats = prof.key_averages().sorted(sort_by)
    if not prof.records:
        return Rich("no OpenCL kernels or copies were launched by the cell", None, [])
    head = ["op", "launches", "total", "mean", "share", "GB/s"]
    rows = [[s.name, s.calls, _t(s.total), _t(s.mean), f"{s.share:.1%}", "?" if s.gbps != s.gbps else f"{s.gbps:.2f}"]
            for s in stats]
    right = (1, 2, 3, 4, 5)
    nk = sum(1 for r in prof.records if r["kind"] == "kernel")
    summary = (f"{nk} kernel launches, {len(prof.records) - nk} copies; device time {_t(prof.total_seconds)}, "
               f"wall {_t(prof.wall_seconds)}")
    text = table_text(head, rows, right) + "\n" + summary
    htm = table_html(head, rows, right, "clgrad-profile") + f"<div>{html.escape(summary)}</div>"
    if timeline:
        tl = timeline_text(prof.records, limit)
        text += "\n\n" + tl
        htm += f"<pre>{html.escape(tl)}</pre>"
    return Rich(text, htm, [s.as_dict() for s in stats])


def _t(s):
    if s != s:
        return "?"
    return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} us"


def timeline_text(records, limit=60, width=48):
    recs = [r for r in records if r["start"] == r["start"]][:limit]
    if not recs:
        return "timeline: no device times"
    t0 = min(r["start"] for r in recs)
    span = max(r["end"] for r in recs) - t0 or 1e-9
    lines = [f"timeline ({_t(span)} across, first {len(recs)} commands):"]
    for r in recs:
        a = int((r["start"] - t0) / span * width)
        b = max(a + 1, int((r["end"] - t0) / span * width))
        bar = " " * a + "#" * (b - a) + " " * (width - b)
        lines.append(f"{_t(r['start'] - t0):>10}  |{bar}|  {r['name']} {_t(r['seconds'])}")
    return "\n".join(lines)
