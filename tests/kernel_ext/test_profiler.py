"""engine.profiler: records, aggregation, nesting, copies, debug levels."""
import json
import os

import numpy as np
import pytest

import engine
from engine import profiler
from engine.runtime import launch
from engine.runtime.device import default_device


def _profiling_queue():
    return bool(default_device().queue.properties & 2)  # CL_QUEUE_PROFILING_ENABLE


def test_profile_records_kernels_and_copies():
    x = engine.ones(1000)
    (x + 1).sum().item()  # compile outside the profile
    with profiler.profile() as prof:
        y = (x + 1).sum()
        v = y.item()
    assert v == 2000
    names = [r["name"] for r in prof.records]
    assert "add" in names and "sum_reduce" in names and names[-1] == "memcpy_dtoh"
    for r in prof.records:
        assert set(r) >= {"name", "kind", "device", "seconds", "start", "end", "queued", "global_size", "bytes"}
        assert r["seconds"] >= 0 and r["end"] >= r["start"] >= 0
        assert r["seconds"] == pytest.approx(r["end"] - r["start"], abs=1e-9)
        assert r["device"] == str(x.device)
    add = next(r for r in prof.records if r["name"] == "add")
    assert add["kind"] == "kernel" and add["bytes"] >= 2 * 1000 * 4 and add["global_size"]
    assert prof.records[-1]["bytes"] == 4 and prof.records[-1]["kind"] == "copy"
    assert prof.total_seconds == pytest.approx(sum(r["seconds"] for r in prof.records))
    assert prof.wall_seconds > 0
    assert launch._PROFILE[0] is None or launch.debug_level() >= 2


def test_queue_profiles_only_while_needed():
    """A profiling queue costs per launch on some drivers: the runtime switches back after."""
    if os.environ.get("CLGRAD_PROFILE") or launch.debug_level() >= 2:
        pytest.skip("profiling forced on")
    engine.ones(4).sum().item()
    assert not _profiling_queue()
    with profiler.profile() as outer:
        assert _profiling_queue()
        with profiler.profile():
            engine.ones(4) + 1
        assert _profiling_queue()
        engine.ones(4) * 2
    assert not _profiling_queue()
    assert all(r["seconds"] == r["seconds"] for r in outer.records)  # read before the switch
    profiler.set_debug(2)
    try:
        assert _profiling_queue()
    finally:
        profiler.set_debug(0)
    assert not _profiling_queue()


def test_key_averages_and_table():
    x = engine.ones(256)
    with profiler.profile(record_copies=False) as prof:
        for _ in range(4):
            x * 2
        x + 1
    assert all(r["kind"] == "kernel" for r in prof.records)
    stats = {s.name: s for s in prof.key_averages()}
    n_mul = sum(r["name"] == "mul" for r in prof.records)
    assert n_mul >= 4 and stats["mul"].calls == n_mul
    assert stats["mul"].total == pytest.approx(sum(r["seconds"] for r in prof.records if r["name"] == "mul"))
    assert stats["mul"].mean == pytest.approx(stats["mul"].total / n_mul)
    assert sum(s.share for s in stats.values()) == pytest.approx(1.0)
    assert stats["mul"].gbps > 0
    by_calls = prof.key_averages().sorted("calls")
    assert by_calls[0].name == "mul"
    t = prof.table(sort_by="calls", row_limit=1)
    assert "mul" in t and "Calls" in t and "GB/s" in t and "more rows" in t
    with pytest.raises(ValueError, match="sort_by"):
        prof.table(sort_by="nonsense")


def test_profiles_nest_and_legacy_api():
    x = engine.ones(64)
    with profiler.profile() as outer:
        x + 1
        with profiler.profile() as inner:
            x * 3
        launch.start_profiling()
        x - 1
        legacy = launch.stop_profiling()
    assert {r["name"] for r in inner.records} == {"mul"}
    assert [n for n, _, _ in legacy] == ["sub"] * len(legacy) and legacy[0][1] >= 0
    assert {"add", "mul", "sub"} <= {r["name"] for r in outer.records}
    assert launch._PROFILE[0] is None or launch.debug_level() >= 2


def test_profile_stops_on_error_and_chrome_trace(tmp_path):
    x = engine.ones(8)
    with pytest.raises(ZeroDivisionError):
        with profiler.profile() as prof:
            x + 1
            1 / 0
    assert prof.records and launch._PROFILE[0] is None
    p = tmp_path / "trace.json"
    prof.export_chrome_trace(p)
    ev = json.loads(p.read_text())["traceEvents"]
    assert ev and ev[0]["ph"] == "X" and "dur" in ev[0]


def test_set_debug(capfd):
    assert profiler.get_debug() == 0
    try:
        prev = profiler.set_debug(2)
        assert prev == 0 and profiler.get_debug() == 2
        capfd.readouterr()
        engine.ones(4) * 5
        err = capfd.readouterr().err
        assert "[clgrad] cl:" in err and "mul" in err and " us" in err and "memcpy" not in err
        profiler.set_debug(3)
        engine.ones(4).sum().item()
        err = capfd.readouterr().err
        assert "memcpy_dtoh" in err
    finally:
        profiler.set_debug(0)
    engine.ones(4) * 5
    assert "[clgrad]" not in capfd.readouterr().err
    assert launch._PROFILE[0] is None
    for bad in (-1, 5, "x", None):
        with pytest.raises(ValueError):
            profiler.set_debug(bad)


def test_results_unchanged_while_profiling():
    a = np.random.randn(33, 17).astype(np.float32)
    t = engine.tensor(a)
    with profiler.profile():
        got = ((t * 2).exp().sum(1)).numpy()
    np.testing.assert_allclose(got, np.exp(a * 2).sum(1), rtol=1e-5)
