"""The widgets' ES modules rendered in jsdom with a fake model (no browser, no kernel).

Skipped unless `node` can load the `jsdom` package (set NODE_PATH to a node_modules folder
that has it, e.g. `npm install --prefix /tmp/jsd jsdom`).  The real-browser checks are
in the notebooks' end-to-end tests; this catches script errors and wiring early.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import engine
from engine.autograd.graph import record_backward
from widgets import BackpropStepper, GraphView, KernelProfile

from .models import MLP

HARNESS = Path(__file__).with_name("js_harness.mjs")


def _node_ok():
    if not shutil.which("node"):
        return False
    r = subprocess.run(["node", "-e", "require('jsdom')"], capture_output=True, env=os.environ)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _node_ok(), reason="node with jsdom not available (set NODE_PATH)")


def run_js(widget, actions, tmp_path):
    state = {k: getattr(widget, k) for k in widget.keys if not k.startswith("_") and k not in ("layout",)}
    mod = tmp_path / "w.mjs"
    mod.write_text(widget._esm)
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "actions.json").write_text(json.dumps(actions))
    r = subprocess.run(["node", str(HARNESS), str(mod), str(tmp_path / "state.json"), str(tmp_path / "actions.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["errors"] == [], out["errors"]
    return out


def _mlp():
    m = MLP(4, 8, 3)
    return m, (m(engine.randn(5, 4)) ** 2).mean()


def test_graphview_renders_and_sends_messages(tmp_path):
    m, loss = _mlp()
    gv = GraphView(loss, m, depth=0)
    gv.backward(retain_graph=True)
    out = run_js(gv, [
        {"count": "svg.clgrad-graph"}, {"count": "g.clg-node"}, {"count": "path.clg-edge"},
        {"count": "g.clg-group"}, {"hover": "g.clg-node", "index": 1}, {"text": ".clg-tip"},
        {"wheel": "svg.clgrad-graph"}, {"attr": [".clg-viewport", "transform"]},
        {"click": "g.clg-group"}, {"click": "g.clg-op"}, {"click": ".clg-export"},
    ], tmp_path)
    counts = {r["count"]: r["n"] for r in out["report"] if "count" in r}
    assert counts == {"svg.clgrad-graph": 1, "g.clg-node": 5, "path.clg-edge": 4, "g.clg-group": 2}
    tip = next(r["value"] for r in out["report"] if r.get("text") == ".clg-tip")
    assert "grad:" in tip
    assert "scale(" in next(r["value"] for r in out["report"] if "attr" in r)
    assert out["sent"][0] == {"type": "toggle", "module": gv.graph["nodes"][
        [n["kind"] for n in gv.nodes].index("group")]["module"]}
    assert out["sent"][1]["type"] == "select"


def test_graphview_detail_panel(tmp_path):
    m, loss = _mlp()
    gv = GraphView(loss, m)
    gv.backward()
    gv.select("n5")
    out = run_js(gv, [{"count": ".clg-panel"}, {"count": ".clg-panel svg.clg-hist rect"},
                      {"count": ".clg-panel svg.clg-heat rect"}, {"click": ".clg-panel button"}], tmp_path)
    counts = [r["n"] for r in out["report"]]
    assert counts[0] == 1 and counts[1] >= 20 and counts[2] >= 1
    assert out["sent"] == [{"type": "select", "id": ""}]


def test_stepper_renders_and_steps(tmp_path):
    m, loss = _mlp()
    with record_backward() as rec:
        loss.backward()
    st = BackpropStepper(rec, loss, module=m)
    out = run_js(st, [{"count": "g.clg-node"}, {"count": "g.clg-cur"}, {"click": ".clg-step"},
                      {"text": ".clg-math"}, {"count": "g.clg-done"}], tmp_path)
    assert out["report"][0]["n"] == 13 and out["report"][1]["n"] == 1
    assert {"save": True} in out["sent"]
    assert out["report"][2]["value"] == st.steps[1]["math"]  # the model's index moved to 1
    assert out["report"][3]["n"] == 1


def test_kernel_profile_renders_and_sorts(tmp_path):
    kp = KernelProfile([{"name": "mm", "seconds": 1e-3, "start": 0, "end": 1e-3, "bytes": 1e6},
                        {"name": "add", "seconds": 1e-4, "start": 1e-3, "end": 1.1e-3}])
    out = run_js(kp, [{"count": "table.clg-table tbody tr"}, {"count": "svg rect"},
                      {"click": "th[data-col=name]"}, {"text": "tbody tr td"}], tmp_path)
    assert out["report"][0]["n"] == 2 and out["report"][1]["n"] == 2
    assert out["report"][2]["value"] == "add"  # sorted by name, ascending


def test_graphview_toolbar_and_cluster_fold(tmp_path):
    m, loss = _mlp()
    gv = GraphView(loss, m, depth=1)  # fc1, fc2 open: drawn as boxes
    out = run_js(gv, [{"count": "g.clg-cluster"}, {"click": "g.clg-cluster text"},
                      {"click": ".clg-bar button", "index": 1}, {"click": ".clg-bar button", "index": 2},
                      {"text": ".clg-depth"}], tmp_path)
    assert out["report"][0]["n"] == 2
    assert out["sent"][0] == {"type": "toggle", "module": "fc1"}
    assert out["sent"][1] == {"type": "depth", "depth": 0} and out["sent"][2] == {"type": "depth", "depth": 2}
    assert out["report"][1]["value"] == "depth 1"
    # what the browser sends, Python applies
    for msg in out["sent"]:
        gv._on_msg(gv, msg, [])
    assert gv.depth == 2


def test_graphview_search_and_stepper_keys(tmp_path):
    m, loss = _mlp()
    gv = GraphView(loss, m, depth=None)
    out = run_js(gv, [{"type": ".clg-search", "value": "fc1."}, {"count": "g.clg-hit"}], tmp_path)
    assert out["report"][0]["n"] == 2  # fc1.weight, fc1.bias
    with record_backward() as rec:
        loss.backward()
    st = BackpropStepper(rec, loss, module=m)
    out = run_js(st, [{"key": "ArrowRight"}, {"key": "ArrowRight"}, {"key": "ArrowLeft"}, {"key": "End"},
                      {"text": ".clg-bar .clg-mono"}], tmp_path)
    assert out["report"][0]["value"] == "step 13/13"


def test_detail_change_updates_only_the_panel(tmp_path):
    m, loss = _mlp()
    gv = GraphView(loss, m)
    detail = GraphView(loss, m)
    detail.select("n1")
    out = run_js(gv, [{"count": ".clg-panel"}, {"set": "detail", "value": detail.detail},
                      {"set": "selected", "value": "n1"}, {"count": ".clg-panel"}, {"count": "svg.clgrad-graph"},
                      {"count": "g.clg-sel"}], tmp_path)
    assert [r["n"] for r in out["report"]] == [0, 1, 1, 1]
