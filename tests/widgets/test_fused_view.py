"""FusedGraphView: engine.compile's plan drawn as a graph of kernels."""
import engine
from engine import nn
from widgets import FusedGraphView, fused_graph_data


def test_fused_graph_view():
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
    c = engine.compile(model)
    c(engine.randn(3, 4, requires_grad=True))
    data = fused_graph_data(c)
    fused = [n for n in data["nodes"] if len(n["ops"]) > 1]
    assert fused and fused[0]["label"].startswith("fused ×") and "erf" in fused[0]["name"]
    assert {cl["module"] for cl in data["clusters"]} == {"forward", "backward"}
    assert all(len(e["points"]) >= 2 for e in data["edges"]) and data["edges"]
    gv = FusedGraphView(c)
    assert repr(gv).startswith("FusedGraphView(steps=")
    svg = gv.to_svg()
    assert svg.startswith("<svg") and "fused ×" in svg and "compiled plan:" in svg
