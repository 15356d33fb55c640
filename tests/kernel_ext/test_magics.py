"""The magics in a real IPython shell: output content, widget model state, clean errors."""
import numpy as np
import pytest
import torch

import engine
from engine.autograd.graph import walk


def _has_widget(name):
    try:
        import widgets
    except Exception:
        return False
    return hasattr(widgets, name)


# ---- devices -------------------------------------------------------------------------------
def test_cl_devices_lists_every_device(shell):
    out = shell.ok("%cl_devices")
    devs = engine.devices()
    for d in devs:
        assert d["name"] in out and d["device"] in out and d["driver_version"] in out
    if any("Portable Computing Language" in d["platform"] for d in devs):
        assert "Portable Computing Language" in out and "pthread" in out
    for col in ("CUs", "global mem", "local mem", "max WG", "fp64", "fp16", "driver"):
        assert col in out
    default = next(d for d in devs if d["default"])
    row = next(ln for ln in out.splitlines() if f" {default['device']} " in ln)
    assert row.lstrip().startswith("*")
    assert shell.magics.last.data == devs


def test_cl_device_shows_and_switches(shell):
    before = engine.get_default_device()
    out = shell.ok("%cl_device")
    assert f"default device: {before}" in out
    for spec in ("cpu", "0:0", "cl:0"):
        if spec == "cpu" and not any(d["type"] == "cpu" for d in engine.devices()):
            continue
        want = engine.device(spec)
        out = shell.ok(f"%cl_device {spec}")
        assert f"default device is now {want}" in out
        assert str(engine.get_default_device()) == str(want)
        assert str(shell.ok("__t = engine.ones(2)\nprint(__t.device)").strip().splitlines()[0]) == str(want)
    engine.set_default_device(str(before))


def test_cl_device_errors(shell):
    before = str(engine.get_default_device())
    shell.fails("%cl_device no-such-vendor-xyz", "no OpenCL device matches")
    shell.fails("%cl_device cl:99", "invalid device")
    shell.fails("%cl_device a b", "unrecognized arguments")
    shell.fails("%cl_devices extra", "takes no arguments")
    assert str(engine.get_default_device()) == before


# ---- %%graph -----------------------------------------------------------------------------
CELL = """
x = engine.tensor([1., 2.], requires_grad=True)
y = engine.tensor([3., 4.], requires_grad=True)
(x * y + x).sum()
"""


def test_graph_text(shell):
    out = shell.ok("%%graph --saved\n" + CELL)
    model = shell.magics.last.data
    names = [n["name"] for n in model["nodes"]]
    assert names == ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad", "AccumulateGrad"]
    assert [n["label"] for n in model["nodes"]][3:] == ["x", "y"]
    # gradient edges: sum->add, add->mul, add->x, mul->x, mul->y
    assert sorted(map(tuple, model["edges"])) == [(0, 1), (1, 2), (1, 3), (2, 3), (2, 4)]
    assert model["nodes"][2]["saved"] == [((2,), "float32"), ((2,), "float32")]
    assert "5 nodes, 5 edges" in out and "MulBackward0" in out
    assert "Out[" not in out  # the final expression is captured, not displayed


def test_graph_named_vars_modules_and_grads(shell):
    shell.ok("engine.manual_seed(0)\nmlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))\n"
             "inp = engine.randn(5, 3)")
    shell.ok("%%graph\nloss = mlp(inp).pow(2).mean()")  # a final `name = ...` shows `name`
    assert shell.magics.last.data["nodes"][0]["label"] == "loss"
    shell.ok("%%graph loss\nloss = mlp(inp).pow(2).mean()\nloss.backward(retain_graph=True)")
    model = shell.magics.last.data
    labels = {n["label"] for n in model["nodes"]}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= labels
    assert model["nodes"][0]["label"] == "loss"
    lin = [n for n in model["nodes"] if n["name"] == "AddmmBackward0"]
    assert sorted(n["module"] for n in lin) == ["0", "2"]
    out = shell.ok("%%graph --grads loss\npass")
    g = {n["label"]: n["grad"] for n in shell.magics.last.data["nodes"] if "grad" in n}
    w = shell["mlp"][0].weight.grad.numpy()
    assert g["0.weight"][0] == (4, 3) and g["0.weight"][1] == pytest.approx(float(np.linalg.norm(w)), rel=1e-5)
    assert "|g|=" in out
    # --depth 0 folds each child of the Sequential (with its parameters) into one node
    shell.ok("%%graph --depth 0 loss\npass")
    folded = shell.magics.last.data
    assert [n["name"] for n in folded["nodes"]] == ["MeanBackward0", "PowBackward0", "Linear", "ReLU", "Linear"]
    assert [n["label"] for n in folded["nodes"][2:]] == ["2", "1", "0"]
    assert [n["members"] for n in folded["nodes"][2:]] == [3, 1, 3]  # addmm + weight + bias
    assert sum(n["members"] for n in folded["nodes"]) == len(walk(shell["loss"]))
    assert sorted(map(tuple, folded["edges"])) == [(0, 1), (1, 2), (2, 3), (3, 4)]


NESTED = """
class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 4)
    def forward(self, x):
        return self.qkv(x).relu()
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attn()
    def forward(self, x):
        return self.attn(x) + x
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x.sum()
engine.manual_seed(0)
net = Net()
"""


def test_graph_module_paths_and_depth_text(shell):
    shell.ok(NESTED)
    shell.ok("%%graph\nnet(engine.randn(3, 4))")
    nodes = shell.magics.last.data["nodes"]
    labels = {n["label"] for n in nodes}
    assert {"blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.1.attn.qkv.weight"} <= labels
    mods = sorted(n["module"] for n in nodes if n["name"] == "AddmmBackward0")
    assert mods == ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]
    # stack positions as in the widget: blocks.N are the root's children (1), attn 2, qkv 3
    shell.ok("%%graph --depth 0\nnet(engine.randn(3, 4))")
    groups = [n for n in shell.magics.last.data["nodes"] if n["op"] == "module"]
    assert sorted((g["label"], g["name"]) for g in groups) == [("blocks.0", "Block"), ("blocks.1", "Block")]
    shell.ok("%%graph --depth 1\nnet(engine.randn(3, 4))")
    folded = shell.magics.last.data["nodes"]
    groups = [n for n in folded if n["op"] == "module"]
    assert sorted((g["label"], g["name"]) for g in groups) == [("blocks.0.attn", "Attn"), ("blocks.1.attn", "Attn")]
    assert all(g["members"] == 4 for g in groups)  # relu, addmm, weight, bias
    assert sorted(n["module"] for n in folded if n["name"] == "AddBackward0") == ["blocks.0", "blocks.1"]
    out = shell.ok("%%graph --depth 1\nnet(engine.randn(3, 4))")
    assert "blocks.0.attn (4 nodes)" in out


def test_graph_widget_model(shell):
    if not _has_widget("GraphView"):
        pytest.skip("widgets.GraphView not available")
    shell.magics.frontend = "widgets"
    shell.ok("%%graph\n" + CELL)
    w = shell.magics.last
    assert type(w).__name__ == "GraphView"
    nodes = {n["id"]: n for n in w.graph["nodes"]}
    assert sorted((n["kind"], n["label"]) for n in nodes.values()) == [
        ("input", "x"), ("input", "y"), ("op", "add"), ("op", "mul"), ("output", "sum")]
    by_label = {n["label"]: i for i, n in nodes.items()}
    edges = sorted((nodes[e["source"]]["label"], nodes[e["target"]]["label"]) for e in w.graph["edges"])
    assert edges == [("add", "sum"), ("mul", "add"), ("x", "add"), ("x", "mul"), ("y", "mul")]
    assert by_label.keys() == {"x", "y", "add", "mul", "sum"}
    # parameters carry their module path, --depth folds
    shell.ok("engine.manual_seed(0)\nmlp2 = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))")
    shell.ok("%%graph --depth 0\nmlp2(engine.randn(2, 3)).sum()")
    w = shell.magics.last
    assert [n["kind"] for n in w.graph["nodes"]].count("group") >= 1
    shell.ok("%%graph --depth 5\nmlp2(engine.randn(2, 3)).sum()")
    labels = {n["label"] for n in shell.magics.last.graph["nodes"]}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= labels


def test_graph_errors(shell):
    shell.fails("%%graph --depth x\n1", "--depth")
    shell.fails("%%graph --depth -1\nengine.ones(1, requires_grad=True)", "--depth must be 0 or more")
    shell.fails("%%graph --bogus\n1", "unrecognized arguments")
    err, out = shell.fails("%%graph\n1 / 0", "ZeroDivisionError")
    assert "ZeroDivisionError" in out and "1 / 0" in out  # the user's own traceback is shown
    shell.fails("%%graph\nfor _ in range(2): pass", "no final expression")
    shell.fails("%%graph\nz = 1", "z is not an engine Tensor (got int)")
    shell.fails("%%graph\n3", "not an engine Tensor")
    shell.fails("%%graph\nengine.ones(2)", "has no autograd graph")
    shell.fails("%%graph no_such_name\npass", "cannot evaluate 'no_such_name'")


# ---- %%backprop ---------------------------------------------------------------------------
def test_backprop_records_steps_with_torch_gradients(shell):
    out = shell.ok("%%backprop\n" + CELL)
    rec = shell.magics.last_recording
    assert len(rec) == 5
    assert sorted(ev.name for ev in rec) == sorted(
        ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad", "AccumulateGrad"])
    assert rec[0].name == "SumBackward0"
    assert "5 backward steps" in out and "MulBackward0" in out
    xt = torch.tensor([1., 2.], requires_grad=True)
    yt = torch.tensor([3., 4.], requires_grad=True)
    (xt * yt + xt).sum().backward()
    np.testing.assert_allclose(shell["x"].grad.numpy(), xt.grad.numpy())
    np.testing.assert_allclose(shell["y"].grad.numpy(), yt.grad.numpy())
    # the recorded leaf gradients are the .grad values
    leaf = {id(ev.tensor): ev.grad_outputs[0].numpy() for ev in rec if ev.is_leaf}
    np.testing.assert_allclose(leaf[id(shell["x"])], xt.grad.numpy())


def test_backprop_module_against_torch(shell):
    shell.ok("engine.manual_seed(1)\nnet = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))\n"
             "xb = engine.randn(6, 3)")
    shell.ok("%%backprop loss\nloss = net(xb).pow(2).mean()")
    rec = shell.magics.last_recording
    assert len(rec) == len(walk(shell["loss"]))
    net = shell["net"]
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        for tp, p in zip(tnet.parameters(), net.parameters()):
            tp.copy_(torch.tensor(p.detach().numpy()))
    tnet(torch.tensor(shell["xb"].numpy())).pow(2).mean().backward()
    for tp, p in zip(tnet.parameters(), net.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_backprop_widget(shell):
    if not _has_widget("BackpropStepper"):
        pytest.skip("widgets.BackpropStepper not available")
    shell.magics.frontend = "widgets"
    shell.ok("%%backprop\n" + CELL)
    w = shell.magics.last
    assert type(w).__name__ == "BackpropStepper"
    assert len(w.steps) == 5 == len(shell.magics.last_recording)
    assert w.steps[0]["name"] == "SumBackward0"
    labels = {s["label"] for s in w.steps}
    assert {"x", "y"} <= labels   # leaves named by their variables, as %%graph names them


def test_backprop_errors(shell):
    shell.fails("%%backprop\nengine.ones(3, requires_grad=True) * 2", "backward() needs a scalar")
    shell.fails("%%backprop\nengine.ones(())", "does not require grad")
    shell.fails("%%backprop\n[1, 2]", "not an engine Tensor")
    shell.fails("%%backprop\nraise ValueError('boom')", "ValueError: boom")
    shell.fails("%%backprop a b\n1", "unrecognized arguments")
    # a second backward through a freed graph
    shell.ok("q = engine.tensor([1., 2.], requires_grad=True)\nql = (q * q).sum()\nql.backward()")
    shell.fails("%%backprop ql\npass", "backward() failed")


# ---- %%cl_profile ----------------------------------------------------------------------------
def test_cl_profile_reports_the_cells_kernels(shell):
    shell.ok("pa = engine.ones(1000)\n(pa + 1) * 2")  # compile first
    out = shell.ok("%%cl_profile\npb = (pa + 1) * 2\npc = pb.sum()\npc.item()")
    prof = shell.magics.last_profile
    kernels = [r["name"] for r in prof.records if r["kind"] == "kernel"]
    assert {"add", "mul", "sum_reduce"} <= set(kernels)
    assert all(r["seconds"] >= 0 for r in prof.records)
    copies = [r for r in prof.records if r["kind"] == "copy"]
    assert any(r["name"] == "memcpy_dtoh" and r["bytes"] == 4 for r in copies)  # .item()
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("op "))
    for col in ("launches", "total", "mean", "share", "GB/s"):
        assert col in lines[head]
    table = {ln.split()[0]: ln.split() for ln in lines[head + 2:] if ln and not ln.startswith(("-", " "))}
    assert table["add"][1] == str(kernels.count("add"))
    assert "kernel launches" in out and "Out[" in out  # the cell's own output still shows
    # sorted by calls, then a timeline
    out = shell.ok("%%cl_profile --sort calls --timeline\nfor _ in range(3): pa * 3\n(pa + 1).sum()")
    rows = [r for r in shell.magics.last.data]
    assert rows[0]["name"] == "mul" and rows[0]["calls"] == max(r["calls"] for r in rows)
    assert "timeline" in out and "|" in out


def test_cl_profile_widget(shell):
    if not _has_widget("KernelProfile"):
        pytest.skip("widgets.KernelProfile not available")
    shell.magics.frontend = "widgets"
    shell.ok("pw = engine.ones(500)\n(pw + 1) * 2")
    shell.ok("%%cl_profile\nfor _ in range(3): pw * 2\n(pw + 1).sum()")
    w = shell.magics.last
    assert type(w).__name__ == "KernelProfile"
    rows = {r["name"]: r for r in w.rows}
    recs = shell.magics.last_profile.records
    assert {"mul", "add", "sum_reduce"} <= rows.keys()
    assert rows["mul"]["launches"] == sum(r["name"] == "mul" for r in recs)
    assert w.launches == len(recs)
    shell.ok("%%cl_profile --sort calls\nfor _ in range(3): pw * 2\n(pw + 1).sum()")
    assert shell.magics.last.sort_by == "launches" and shell.magics.last.rows[0]["name"] == "mul"


def test_cl_profile_nothing_and_errors(shell):
    out = shell.ok("%%cl_profile\nz = 1 + 1")
    assert "no OpenCL kernels" in out
    shell.fails("%%cl_profile --sort size\n1", "invalid choice")
    shell.fails("%%cl_profile\nengine.ones(2) + undefined_name", "NameError")
    from engine.runtime import launch
    assert launch._PROFILE[0] is None or launch.debug_level() >= 2  # profiling stopped after the error


# ---- %grad_watch ----------------------------------------------------------------------------
def test_grad_watch_text_updates_after_backward(shell):
    shell.ok("engine.manual_seed(2)\ngw = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))\n"
             "gx = engine.randn(4, 3)")
    out = shell.ok("%grad_watch gw --every 2")
    assert "watching 4 parameters" in out
    watch = shell.magics.last
    out = shell.ok("gw(gx).sum().backward()")
    assert "gradient flow" not in out and watch.passes == 1
    out = shell.ok("gw.zero_grad()\ngw(gx).sum().backward()")
    assert "gradient flow of gw after 2 backward pass(es)" in out
    assert watch.passes == 2 and len(watch.tables) == 1
    norms = {d["name"]: d["norm"] for d in watch.tables[-1].data}
    for name, p in shell["gw"].named_parameters():
        assert norms[name] == pytest.approx(float(np.linalg.norm(p.grad.numpy())), rel=1e-5)
    out = shell.ok("gw(gx).sum().backward()\ngw(gx).sum().backward()")
    assert "after 4 backward pass(es)" in out
    out = shell.ok("%grad_watch --off")
    assert "stopped 1 watch" in out
    out = shell.ok("gw(gx).sum().backward()\ngw(gx).sum().backward()")
    assert "gradient flow" not in out and watch.passes == 4  # hooks removed


def test_grad_watch_widget(shell):
    if not _has_widget("GradientFlow"):
        pytest.skip("widgets.GradientFlow not available")
    shell.magics.frontend = "widgets"
    shell.ok("engine.manual_seed(3)\ngw2 = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))\n"
             "gx2 = engine.randn(4, 3)")
    shell.ok("%grad_watch gw2")
    w = shell.magics.last
    assert type(w).__name__ == "GradientFlow"
    assert len(w.history) == 0
    shell.ok("gw2(gx2).sum().backward()")
    # the post_run_cell callback flushed the sample: history and the figure show this backward
    assert len(w.history) == 1
    norms = w.history[-1]["grad_norm"]
    for name, p in shell["gw2"].named_parameters():
        assert norms[name] == pytest.approx(float(np.linalg.norm(p.grad.numpy())), rel=1e-5)
    assert list(w.fig.data[0].x) == [n for n, _ in shell["gw2"].named_parameters()]
    shell.ok("gw2(gx2).sum().backward()")
    assert len(w.history) == 2
    shell.ok("%grad_watch gw2 --off")
    assert not shell.magics.watches


def test_grad_watch_errors(shell):
    shell.fails("%grad_watch", "name the module")
    shell.fails("%grad_watch nothing_here", "cannot evaluate 'nothing_here'")
    shell.ok("notmod = 3")
    shell.fails("%grad_watch notmod", "not an nn.Module")
    shell.ok("wm = nn.Linear(2, 2)")
    shell.fails("%grad_watch wm --every 0", "--every must be 1 or more")
    shell.fails("%grad_watch wm --every x", "--every")
    shell.fails("%grad_watch wm --off", "is not being watched")


# ---- %clgrad_debug --------------------------------------------------------------------------
def test_clgrad_debug_switches_levels(shell):
    from engine import profiler
    try:
        out = shell.ok("%clgrad_debug 2")
        assert "debug level 2" in out and profiler.get_debug() == 2
        out = shell.ok("__d = engine.ones(8) * 3")
        assert "[clgrad] cl:" in out and "mul" in out and " us" in out
        out = shell.ok("%clgrad_debug")
        assert "debug level 2" in out
    finally:
        shell.ok("%clgrad_debug 0")
    assert profiler.get_debug() == 0
    out = shell.ok("__d = engine.ones(8) * 3")
    assert "[clgrad]" not in out
    shell.fails("%clgrad_debug 9", "debug level must be 0-4")
    shell.fails("%clgrad_debug loud", "must be an integer")


def test_help_from_docstrings(shell):
    for name, kind in (("cl_devices", "line"), ("cl_device", "line"), ("graph", "cell"), ("backprop", "cell"),
                       ("cl_profile", "cell"), ("grad_watch", "line"), ("clgrad_debug", "line")):
        fn = shell.ip.magics_manager.magics[kind][name]
        assert fn.__doc__ and len(fn.__doc__) > 60
    assert "%graph [--grads] [--saved] [--depth N] [VAR ...]" in shell.ip.magics_manager.magics["cell"]["graph"].__doc__
    out = shell.ok("%cl_device?")
    assert "%cl_device [spec]" in out and "Select clgrad's default OpenCL device" in out
    assert "--every" in shell.ip.magics_manager.magics["line"]["grad_watch"].__doc__
