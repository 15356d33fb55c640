"""KernelProfile: aggregation, sorting, timeline SVG, reprs."""
import xml.dom.minidom

import pytest

from widgets import KernelProfile, aggregate

RECS = [
    {"name": "mm_f32", "seconds": 1e-3, "start": 10.0, "end": 10.001, "bytes": 4_000_000},
    {"name": "add_f32", "seconds": 1e-4, "start": 10.001, "end": 10.0011, "bytes": 400_000},
    {"name": "mm_f32", "seconds": 3e-3, "start": 10.002, "end": 10.005, "bytes": 4_000_000},
    {"name": "relu", "seconds": 5e-4, "start": 10.005, "end": 10.0055},
]


def test_aggregate():
    rows = aggregate(RECS)
    assert [r["name"] for r in rows] == ["mm_f32", "relu", "add_f32"]
    mm = rows[0]
    assert mm["launches"] == 2
    assert mm["total_ms"] == pytest.approx(4.0)
    assert mm["mean_us"] == pytest.approx(2000.0)
    assert mm["min_us"] == pytest.approx(1000.0) and mm["max_us"] == pytest.approx(3000.0)
    assert mm["share"] == pytest.approx(4.0 / 4.6)
    assert mm["gbps"] == pytest.approx(8e6 / 4e-3 / 1e9)
    assert rows[1]["gbps"] is None and rows[1]["bytes"] is None
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_widget_sorting_and_text():
    kp = KernelProfile(RECS)
    assert repr(kp) == "KernelProfile(kernels=3, launches=4)"
    assert kp.launches == 4 and kp.total_seconds == pytest.approx(4.6e-3)
    kp.sort("launches", descending=False)
    assert [r["name"] for r in kp.rows][-1] == "mm_f32"
    kp.sort("name", descending=False)
    assert [r["name"] for r in kp.rows] == ["add_f32", "mm_f32", "relu"]
    kp.sort_by = "mean_us"  # a header click in the browser sets the trait
    kp.descending = True
    assert [r["name"] for r in kp.rows] == ["mm_f32", "relu", "add_f32"]
    with pytest.raises(ValueError):
        kp.sort("nope")
    text = kp.to_text()
    assert text.splitlines()[0].split() == ["kernel", "launches", "total", "ms", "mean", "us", "share", "GB/s"]
    assert "mm_f32" in text.splitlines()[2]


def test_timeline_events_and_svg():
    kp = KernelProfile(RECS)
    assert kp.events[0][:3] == [0, 0.0, 1000.0]  # lane, start us, end us (relative to the first)
    assert kp.span == pytest.approx(5500.0)
    doc = xml.dom.minidom.parseString(kp.to_svg())
    assert doc.documentElement.tagName == "svg"
    assert len([r for r in doc.getElementsByTagName("rect") if r.getElementsByTagName("title")]) == 4
    data, _ = kp._repr_mimebundle_()
    assert data["text/plain"] == "KernelProfile(kernels=3, launches=4)" and "<svg" in data["text/html"]


def test_tuples_and_missing_times():
    kp = KernelProfile([("a", 1e-3, (64,)), ("b", 2e-3, (64,)), ("a", float("nan"), (1,))])
    assert [(r["name"], r["launches"]) for r in kp.rows] == [("b", 1), ("a", 2)]
    assert kp.events[1][1:3] == [1000.0, 3000.0]  # laid end to end
    assert KernelProfile([]).rows == [] and repr(KernelProfile([])) == "KernelProfile(kernels=0, launches=0)"


def test_engine_profiler_records():
    import json

    import engine
    profiler = pytest.importorskip("engine.profiler")
    x = engine.randn(64, 64)
    with profiler.profile() as prof:
        y = (x @ x).relu().sum()
        y.item()
    kp = KernelProfile(prof.records)
    assert kp.launches == len(prof.records) > 0
    assert {r["name"] for r in kp.rows} == {r["name"] for r in prof.records}
    json.dumps({"rows": kp.rows, "events": kp.events, "span": kp.span}, allow_nan=False)
    xml.dom.minidom.parseString(kp.to_svg())


def test_non_finite_times_are_laid_end_to_end():
    import json
    nan = float("nan")
    kp = KernelProfile([{"name": "a", "seconds": nan, "start": nan, "end": nan},
                        {"name": "b", "seconds": 1e-3, "start": 0.0, "end": 1e-3}])
    json.dumps({"rows": kp.rows, "events": kp.events, "span": kp.span}, allow_nan=False)
    assert kp.rows[0]["name"] == "b"
