"""Smoke run of benchmarks/run.py (the Performance issue's table): `run.py --quick --json` on the default device
reports every row, each with finite positive values and ratio, and every row's result agreed with PyTorch's."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")

pytest.importorskip("torch")


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _expected_keys(mod, meta):
    keys = []
    for group in mod.GROUPS:
        for k in mod.ROW_KEYS[group]:
            if k == "sgemm_{}":
                keys += [f"sgemm_{m}" for m in mod.SIZES["quick"]["gemm"]]
            elif k in ("gpt_step_compiled", "gpt_first_call_compiled") and not meta["engine_compile"]:
                continue
            else:
                keys.append(k)
    return keys


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    p = subprocess.run([sys.executable, RUN, "--quick", "--json", str(out)], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    with open(out) as f:
        return json.load(f), p.stdout


def test_quick_run_reports_every_row(quick_run):
    data, stdout = quick_run
    mod = _run_module()
    rows = {r["key"]: r for r in data["rows"]}
    missing = [k for k in _expected_keys(mod, data) if k not in rows]
    assert not missing, f"rows missing: {missing}; skipped: {data['skipped']}\n{stdout[-3000:]}"
    for key, r in rows.items():
        assert r["check_ok"], f"{key}: result disagrees with PyTorch (relative error {r['check_err']})"
        for field in ("clgrad", "torch", "ratio"):
            v = r[field]
            assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, f"{key}: {field} = {v!r}"
        if r.get("work") is not None and r.get("clgrad_ms") is not None:
            assert r["clgrad_rate"] > 0 and r["torch_rate"] > 0, key


def test_quick_run_metadata(quick_run):
    data, stdout = quick_run
    for field in ("date", "clgrad_device", "torch_device", "torch_version", "sizes"):
        assert data[field], field
    assert data["sizes"] == "quick"
    assert "ratio" in stdout and "a*b+c" in stdout
