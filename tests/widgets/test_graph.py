"""GraphView / graph_data: names, counts, folding, colours, layout, SVG, reprs."""
import random
import time
import xml.dom.minidom

import numpy as np
import pytest

import engine
from widgets import GraphView, graph_data
from widgets.graph import GraphModel
from widgets.layout import layered_layout

from .models import GPT, MLP, Attention


def _mlp_loss():
    m = MLP(4, 8, 3)
    x = engine.randn(5, 4)
    return m, (m(x) ** 2).mean()


def _labels(d):
    return sorted(n["label"] for n in d["nodes"])


def _check_layout(d):
    """Producers sit above consumers; nodes of one layer do not overlap."""
    pos = {n["id"]: n for n in d["nodes"]}
    for e in d["edges"]:
        if not e["back"]:
            assert pos[e["source"]]["y"] < pos[e["target"]]["y"], e
    by_layer = {}
    for n in d["nodes"]:
        by_layer.setdefault(n["y"], []).append(n)
    for row in by_layer.values():
        row.sort(key=lambda n: n["x"])
        for a, b in zip(row, row[1:]):
            assert a["x"] + a["w"] / 2 <= b["x"] - b["w"] / 2 + 1e-6, (a["id"], b["id"])
    for n in d["nodes"]:
        assert 0 <= n["x"] - n["w"] / 2 and n["x"] + n["w"] / 2 <= d["width"]


def test_mlp_nodes_edges_and_names():
    m, loss = _mlp_loss()
    d = graph_data(loss, m)
    assert d["stats"]["ops"] == 9 and d["stats"]["leaves"] == 4
    assert len(d["nodes"]) == 13 and len(d["edges"]) == 12
    assert _labels(d) == sorted(["mean", "pow", "add", "mm", "t", "fc2.bias", "fc2.weight", "relu", "add", "mm", "t",
                                 "fc1.bias", "fc1.weight"])
    kinds = {n["label"]: n["kind"] for n in d["nodes"]}
    assert kinds["fc1.weight"] == "param" and kinds["mean"] == "output" and kinds["relu"] == "op"
    mods = {n["label"]: n["module"] for n in d["nodes"] if n["kind"] == "param"}
    assert mods == {"fc1.weight": "fc1", "fc1.bias": "fc1", "fc2.weight": "fc2", "fc2.bias": "fc2"}
    shapes = {n["label"]: n["sub"] for n in d["nodes"] if n["kind"] == "param"}
    assert shapes["fc1.weight"] == "(8, 4)" and shapes["fc2.bias"] == "(3,)"
    _check_layout(d)
    # the output is the lowest node, fc1.weight the highest
    ys = {n["label"]: n["y"] for n in d["nodes"]}
    assert ys["mean"] == max(ys.values()) and ys["fc1.weight"] == min(ys.values())


def test_module_found_from_graph_and_inputs_named():
    m = MLP(4, 8, 3)
    x = engine.randn(5, 4, requires_grad=True)
    d = graph_data(m(x).sum(), names={"x": x})  # no module given: found from the module stacks
    labels = _labels(d)
    assert "fc1.weight" in labels and "x" in labels
    assert next(n for n in d["nodes"] if n["label"] == "x")["kind"] == "input"


def test_attention_block_counts():
    a = Attention(8)
    x = engine.randn(5, 8, requires_grad=True)
    d = graph_data(a(x).sum(), a, names={"x": x})
    assert d["stats"] == {**d["stats"], "ops": 14, "leaves": 5, "nodes": 19, "edges": 20, "folded": 0}
    ops = sorted(n["label"] for n in d["nodes"] if n["kind"] in ("op", "output"))
    assert ops == sorted(["sum", "add", "mm", "t", "mm", "softmax", "maskedfill", "mul", "mm", "transpose", "split",
                          "add", "mm", "t"])
    assert {n["label"] for n in d["nodes"] if n["kind"] == "param"} == {"qkv.weight", "qkv.bias", "proj.weight",
                                                                         "proj.bias"}
    _check_layout(d)


def test_gpt_parameter_names_by_module_path_and_folding():
    g = GPT(vocab=16, d=8, n_layer=2, T=4)
    idx = engine.randint(0, 16, (2, 4))
    loss = g(idx).logsumexp(-1).mean()
    gm = GraphModel(loss, g, saved=False)
    names = {gm.labels[n.id] for n in gm.infos if n.is_leaf}
    assert names == {n for n, _ in g.named_parameters()}
    assert "blocks.1.attn.qkv.weight" in names
    # depth 0: every top-level call folded
    d0 = gm.layout(depth=0)
    groups = sorted(n["label"] for n in d0["nodes"] if n["kind"] == "group")
    assert groups == ["blocks.0: Block", "blocks.1: Block", "head: Lin", "ln_f: Norm"]
    blk = next(n for n in d0["nodes"] if n["id"] == "g:blocks.0")
    n_ops = sum(1 for n, ps in zip(gm.infos, gm.paths) if "blocks.0" in ps and not n.is_leaf)
    assert blk["count"] == n_ops and blk["params"] == 12
    _check_layout(d0)
    # depth 1 (default): blocks open, their children folded
    d1 = gm.layout(depth=1)
    groups1 = {n["module"] for n in d1["nodes"] if n["kind"] == "group"}
    assert {"blocks.0.attn", "blocks.0.mlp", "blocks.1.ln2"} <= groups1
    assert "blocks.0" not in groups1 and "head" not in groups1  # head (depth 1) is open: mm, t
    assert {c["module"] for c in d1["clusters"]} == {"blocks.0", "blocks.1", "head", "ln_f"}
    # everything: no groups, every op and leaf visible
    dn = gm.layout(depth=None)
    assert dn["stats"]["folded"] == 0 and dn["stats"]["nodes"] == len(gm.infos)
    _check_layout(dn)
    # counts are conserved by folding
    assert sum(n["count"] if n["kind"] == "group" else 1 for n in d0["nodes"] if n["kind"] != "param") == \
        dn["stats"]["ops"]


def test_expand_collapse_and_messages():
    g = GPT(vocab=16, d=8, n_layer=2, T=4)
    loss = g(engine.randint(0, 16, (2, 4))).sum()
    gv = GraphView(loss, g, depth=0)
    assert repr(gv) == "GraphView(nodes=10, edges=9, folded=4)"
    assert _labels(gv.graph) == ["add", "blocks.0: Block", "blocks.1: Block", "head: Lin", "index", "ln_f: Norm",
                                 "slice", "sum", "wpe", "wte"]
    assert not gv.is_expanded("blocks.0")
    gv.expand("blocks.0")
    assert gv.is_expanded("blocks.0") and "g:blocks.0" not in {n["id"] for n in gv.nodes}
    assert "g:blocks.0.attn" in {n["id"] for n in gv.nodes}
    # a click on a folded group in the browser sends {'type': 'toggle'}
    gv._on_msg(gv, {"type": "toggle", "module": "blocks.0.attn"}, [])
    ids = {n["id"] for n in gv.nodes}
    assert "g:blocks.0.attn" not in ids and "g:blocks.0.attn.qkv" in ids
    gv._on_msg(gv, {"type": "toggle", "module": "blocks.0"}, [])
    assert "g:blocks.0" in {n["id"] for n in gv.nodes}
    assert gv.graph["groups"]["blocks.0"]["expanded"] is False
    gv._on_msg(gv, {"type": "depth", "depth": None}, [])
    assert gv.graph["stats"]["folded"] == 0 and gv.depth is None
    # select sends the detail panel's data
    gv._on_msg(gv, {"type": "select", "id": "n0"}, [])
    assert gv.selected == "n0" and gv.detail["name"] == "SumBackward0"
    gv.depth = 0
    gv.select("g:blocks.1")
    assert gv.detail["kind"] == "group" and len(gv.detail["params"]) == 12


def test_gradient_colours_after_backward():
    m, loss = _mlp_loss()
    gv = GraphView(loss, m)
    assert all(n["color"] is None for n in gv.nodes)
    events = gv.backward()
    assert len(events) == 13
    # every node has a gradient now (ops from the recording, leaves from .grad)
    assert all(n["grad"] is not None and n["color"] for n in gv.nodes)
    w = gv.node("fc1.weight")
    assert w["grad"]["norm"] == pytest.approx(float(np.linalg.norm(m.fc1.weight.grad.numpy())), rel=1e-5)
    assert gv.node("mean")["grad"]["values"] == [1.0]
    lo, hi = gv.graph["stats"]["grad_range"]
    assert lo == pytest.approx(min(n["grad"]["rms"] for n in gv.nodes), rel=1e-6)
    assert hi == pytest.approx(1.0)
    # the biggest gradient gets the top colour of the ramp
    assert gv.node("mean")["color"] == "#fde725"
    assert all(e["color"] for e in gv.edges)


def test_forward_values_from_saved_tensors():
    m, loss = _mlp_loss()
    gm = GraphModel(loss, m)
    relu = next(i for i, n in enumerate(gm.infos) if n.op == "relu")
    assert gm.values[relu] is not None and gm.values[relu]["min"] >= 0
    assert gm.values[0]["values"] == [pytest.approx(loss.item())]
    w = next(i for i, lab in enumerate(gm.labels) if lab == "fc1.weight")
    assert gm.values[w]["shape"] == [8, 4] and "hist" in gm.values[w] and len(gm.values[w]["heat"]) == 8


def test_non_finite_flagged_with_origin():
    w = engine.nn.Parameter(engine.tensor([1.0, -1.0, 4.0]))
    y = (w.log() * 2).sum()  # log(-1) = nan: the forward origin is log
    gv = GraphView(y, names={"w": w})
    assert gv.graph["origin_names"]["forward"] == "LogBackward0"
    origin = gv.graph["origin"]["forward"]
    node = next(n for n in gv.nodes if n["id"] == origin)
    assert node["origin"] and node["nonfinite"] and node["color"] == "#e11d48"
    assert not gv.node("w")["nonfinite"]
    # backward: sqrt'(0) = inf is produced by sqrt's backward
    v = engine.nn.Parameter(engine.tensor([0.0, 1.0]))
    z = v.sqrt().sum()
    gv2 = GraphView(z, names={"v": v})
    gv2.backward()
    assert gv2.graph["origin_names"]["backward"] == "SqrtBackward0"
    assert gv2.node("v")["nonfinite"] and gv2.node("v")["color"] == "#e11d48"
    assert "first non-finite" in gv2.to_svg() or gv2.to_svg().count("#e11d48") >= 1


def test_svg_export_valid_and_fallback_bundle(tmp_path):
    m, loss = _mlp_loss()
    gv = GraphView(loss, m, title="mlp")
    svg = gv.to_svg()
    doc = xml.dom.minidom.parseString(svg)
    root = doc.documentElement
    assert root.tagName == "svg" and root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
    assert len(doc.getElementsByTagName("rect")) >= 13 + 1
    assert svg.count('class="clg-node') == 13 and svg.count('class="clg-edge"') == 12
    gv.save_svg(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == svg
    data, _ = gv._repr_mimebundle_()
    assert data["text/plain"] == "GraphView(nodes=13, edges=12, folded=0)"
    assert data["text/html"].startswith('<div class="clgrad-static"><svg')
    assert "application/vnd.jupyter.widget-view+json" in data


def test_repr_and_layout_deterministic():
    engine.manual_seed(1)
    m1, l1 = _mlp_loss()
    engine.manual_seed(1)
    m2, l2 = _mlp_loss()
    a, b = GraphView(l1, m1), GraphView(l2, m2)
    assert repr(a) == repr(b) == "GraphView(nodes=13, edges=12, folded=0)"
    assert a.to_svg() == b.to_svg()
    assert a.graph == b.graph


def test_folded_module_called_twice_stays_acyclic():
    # the same module used twice makes a cycle when folded: the layout cuts it (a back edge)
    m = MLP(4, 4, 4)
    x = engine.randn(3, 4)
    y = m.fc2(m.fc1(m.fc2(x)).relu()).sum()
    d = graph_data(y, m, depth=0)
    assert {n["id"] for n in d["nodes"] if n["kind"] == "group"} == {"g:fc1", "g:fc2"}
    assert sum(e["back"] for e in d["edges"]) == 1
    _check_layout(d)


def test_layout_5000_nodes_about_a_second():
    rnd = random.Random(0)
    n = 5000
    ids = [f"v{i}" for i in range(n)]
    edges = []
    for i in range(1, n):  # consumers first (walk order): node i feeds one or two earlier nodes
        edges.append((ids[i], ids[rnd.randrange(max(0, i - 20), i)]))
        if i % 3 == 0:
            edges.append((ids[i], ids[rnd.randrange(max(0, i - 60), i)]))
    widths = {v: 80 for v in ids}
    t0 = time.perf_counter()
    lay = layered_layout(ids, widths, edges)
    dt = time.perf_counter() - t0
    assert len(lay["pos"]) == n
    assert dt < 6.0  # ~1 s alone on this machine; generous for a shared 2-core box
    for (a, b), back in zip(edges, lay["back"]):
        assert back or lay["pos"][a][1] < lay["pos"][b][1]


def test_graphview_of_a_graph_data_dict():
    m, loss = _mlp_loss()
    d = graph_data(loss, m, depth=0)
    gv = GraphView(d)
    assert repr(gv) == "GraphView(nodes=5, edges=4, folded=2)"
    assert gv.to_svg().count('class="clg-node') == 5
    gv.select("n0")
    assert gv.detail["label"] == "mean"
    with pytest.raises(RuntimeError, match="fixed graph_data"):
        gv.expand("fc1")


def test_static_fallback_limits():
    m, loss = _mlp_loss()
    gv = GraphView(loss, m)
    gv.static_max_nodes = 3
    data, _ = gv._repr_mimebundle_()
    assert "too big" in data["text/html"]
    gv.static_fallback = False
    data, _ = gv._repr_mimebundle_()
    assert "text/html" not in data


def test_submodule_given_outer_modules_named_deterministically():
    m = MLP(4, 8, 3)
    loss = m(engine.randn(2, 4)).sum()
    d = graph_data(loss, m.fc2, depth=None)  # the graph was made inside MLP, fc2 given
    mods = {n["module"] for n in d["nodes"]}
    assert "<MLP#0>" in mods or any(c["module"] == "<MLP#0>" for c in d["clusters"])
    assert {n["label"] for n in d["nodes"] if n["kind"] == "param"} == {"weight", "bias", "param", "param1"}


def test_update_keeps_folding():
    m = MLP(4, 8, 3)
    x = engine.randn(5, 4)
    gv = GraphView((m(x) ** 2).mean(), m, depth=0)
    gv.expand("fc2")
    before = repr(gv)
    loss2 = (m(x) ** 2).mean()
    gv.update(loss2)
    assert repr(gv) == before == "GraphView(nodes=9, edges=8, folded=1)"
    assert gv.model.root is loss2 and gv.is_expanded("fc2") and not gv.is_expanded("fc1")


def test_synced_state_is_strict_json_with_non_finite_values():
    import json
    from engine.autograd.graph import record_backward
    from widgets import BackpropStepper
    w = engine.nn.Parameter(engine.tensor([1.0, -1.0, 0.0]))
    y = (w.log() * w.sqrt()).sum()
    gv = GraphView(y, names={"w": w})
    with record_backward() as rec:
        y.backward(retain_graph=True)
    gv.refresh(rec)
    json.dumps(gv.graph, allow_nan=False)
    for n in gv.nodes:
        gv.select(n["id"])
        json.dumps(gv.detail, allow_nan=False)
    json.dumps(BackpropStepper(rec, y).steps, allow_nan=False)


def test_tensors_without_history():
    assert graph_data(engine.randn(3))["stats"]["nodes"] == 0
    w = engine.randn(3, requires_grad=True)
    d = graph_data(w, names={"w": w})
    assert [(n["label"], n["kind"]) for n in d["nodes"]] == [("w", "input")]
    gv = GraphView(engine.randn(2))
    assert repr(gv) == "GraphView(nodes=0, edges=0, folded=0)"
    xml.dom.minidom.parseString(gv.to_svg())
