"""The HTML display of Tensors and Modules: content, statistics, and the formatter wiring."""
import math
import re

import numpy as np
import pytest

import engine
import engine.nn as nn
from kernel_ext import display as D


def _row(html, key):
    m = re.search(rf"<th[^>]*>{re.escape(key)}</th><td[^>]*>([^<]*)</td>", html)
    assert m, key
    return m.group(1)


def _num(s):
    return float(s.replace(",", ""))


def test_tensor_html_stats_and_nan_count():
    a = np.random.randn(6, 7).astype(np.float32)
    a[1, 2] = np.nan
    a[3, 4] = np.nan
    a[0, 0] = np.inf
    t = engine.tensor(a)
    h = D.tensor_html(t)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert _row(h, "shape") == "[6, 7]" and _row(h, "dtype") == "float32" and _row(h, "device") == str(t.device)
    assert _row(h, "NaN") == "2" and _row(h, "Inf") == "1"
    for key, want in (("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()), ("std", fin.std(ddof=1))):
        assert _num(_row(h, key)) == pytest.approx(want, rel=1e-3, abs=1e-4), key
    assert 'class="clgrad-heatmap"' in h and "<svg" in h
    assert "#ff00ff" in h  # NaN cells
    assert "2 NaN, 1 Inf of 42 elements" in h
    assert "no grad" in h


def test_tensor_html_autograd_and_histogram():
    x = engine.tensor(np.linspace(-1, 1, 50, dtype=np.float32), requires_grad=True)
    h = D.tensor_html(x)
    assert "leaf, requires_grad" in h and 'class="clgrad-histogram"' in h and "clgrad-heatmap" not in h
    y = (x * 2).exp()
    h = D.tensor_html(y)
    assert "grad_fn=ExpBackward0" in h
    assert _num(_row(h, "max")) == pytest.approx(math.exp(2), rel=1e-4)
    # 3-D: histogram; ints and bools work; the values are in a details block
    h = D.tensor_html(engine.arange(24).reshape(2, 3, 4))
    assert _row(h, "min") == "0" and _num(_row(h, "max")) == 23 and _num(_row(h, "mean")) == 11.5
    assert "clgrad-histogram" in h and "<details open>" in h and "tensor([[[" in h
    h = D.tensor_html(engine.tensor([True, False, True]))
    assert _num(_row(h, "mean")) == pytest.approx(2 / 3, rel=1e-3)
    h = D.tensor_html(engine.zeros(0, 3))
    assert _row(h, "shape") == "[0, 3]" and _row(h, "NaN") == "0"
    h = D.tensor_html(engine.tensor(3.5))
    assert _num(_row(h, "mean")) == 3.5 and _row(h, "std") == "nan"


def test_large_tensor_path_matches_host_path():
    a = np.random.randn(300, 200).astype(np.float32)
    a[::37, ::11] = np.nan
    a[5, 5] = -np.inf
    t = engine.tensor(a)
    small = D.tensor_stats(t)
    old = D.HOST_LIMIT
    D.HOST_LIMIT = 1000   # force the device-reduction path
    try:
        big = D.tensor_stats(t)
        h = D.tensor_html(t)
    finally:
        D.HOST_LIMIT = old
    assert big["sampled"] and not small["sampled"]
    assert big["nan"] == small["nan"] == int(np.isnan(a).sum()) and big["inf"] == small["inf"] == 1
    for k in ("min", "max", "mean", "std"):
        assert big[k] == pytest.approx(small[k], rel=1e-4, abs=1e-6), k
    assert big["sample"].shape[0] <= D.HEATMAP_MAX and big["sample"].shape[1] <= D.HEATMAP_MAX
    assert "strided sample" in h and "clgrad-heatmap" in h


def test_heatmap_size_is_bounded():
    h = D.tensor_html(engine.randn(500, 500))
    assert h.count("<rect") <= D.HEATMAP_MAX ** 2
    assert len(h) < 150_000


def test_module_html_table_shapes_and_counts():
    D.start_shape_recording()
    try:
        m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2), nn.Tanh()))
        m[0].bias.requires_grad_(False)
        h0 = D.module_html(m)
        assert "[5, 4]" not in h0
        m(engine.randn(5, 3))
        h = D.module_html(m)
    finally:
        D.stop_shape_recording()
    rows = re.findall(r"<tr><td[^>]*>(?:&nbsp;)*([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>"
                      r"<td[^>]*>([^<]*)</td></tr>", h)
    assert [r[0] for r in rows] == ["(root)", "0", "1", "2", "2.0", "2.1"]
    assert [r[1] for r in rows] == ["Sequential", "Linear", "ReLU", "Sequential", "Linear", "Tanh"]
    assert [r[2] for r in rows] == ["[5, 2]", "[5, 4]", "[5, 4]", "[5, 2]", "[5, 2]", "[5, 2]"]
    assert [r[3] for r in rows] == ["0", "16", "0", "0", "10", "0"]
    assert "Total params: <b>26</b>" in h and "trainable: 22" in h and "non-trainable: 4" in h
    assert "Linear(in_features=3, out_features=4, bias=True)" in h  # the torch-style repr
    txt = D.module_text(m)
    assert "Total params: 26" in txt and "[5, 4]" in txt


def test_formatters_registered_and_plain_repr_unchanged(shell):
    ip = shell.ip
    fmt = ip.display_formatter.formatters["text/html"]
    old = fmt.enabled
    fmt.enabled = True  # the terminal shell disables HTML; a notebook kernel has it on
    try:
        t = engine.tensor([[1.0, float("nan")], [2.0, 3.0]], requires_grad=True)
        data, _ = ip.display_formatter.format(t)
        assert data["text/plain"] == repr(t)
        assert "clgrad-tensor" in data["text/html"] and ">NaN</th><td" in data["text/html"]
        p = nn.Parameter(engine.ones(2))
        data, _ = ip.display_formatter.format(p)
        assert "clgrad-tensor" in data["text/html"] and data["text/plain"] == repr(p)
        shell.ok("dm = nn.Sequential(nn.Linear(2, 3), nn.ReLU())\n_ = dm(engine.ones(4, 2))")
        data, _ = ip.display_formatter.format(shell["dm"])
        assert data["text/plain"] == repr(shell["dm"])
        assert "clgrad-module" in data["text/html"] and "[4, 3]" in data["text/html"]
    finally:
        fmt.enabled = old
