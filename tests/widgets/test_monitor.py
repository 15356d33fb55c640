"""TrainingMonitor: history, throttled redraws, export, smoothing, reprs."""
import csv
import io
import json
import math

import pytest

import engine
from widgets import TrainingMonitor
from widgets.monitor import ema


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_history_and_any_scalar_names():
    mon = TrainingMonitor()
    for i in range(5):
        mon.log(i, loss=1.0 / (i + 1), acc=i / 10, my_metric=i * i)
    mon.log(5, loss=0.1)
    mon.log(val_loss=0.3)  # step defaults to previous + 1
    h = mon.history
    assert mon.names == ["loss", "acc", "my_metric", "val_loss"]
    assert h["loss"] == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25), (4, 0.2), (5, 0.1)]
    assert h["my_metric"][-1] == (4, 16.0)
    assert h["val_loss"] == [(6, 0.3)]
    assert repr(mon) == "TrainingMonitor(scalars=['loss', 'acc', 'my_metric', 'val_loss'], logged=7)"


def test_tensors_read_at_redraw_time_only():
    clock = Clock()
    mon = TrainingMonitor(clock=clock, interval=0.25)
    t = engine.tensor(2.5)
    mon.log(0, loss=t)       # first log draws (throttle open)
    clock.t = 0.1
    t2 = engine.tensor(1.5)
    mon.log(1, loss=t2)      # throttled: the tensor is kept, not converted
    assert mon._raw["loss"][1][1] is t2
    assert mon.history["loss"] == [(0, 2.5), (1, 1.5)]  # reading history converts


def test_throttling_counts_redraws():
    clock = Clock()
    mon = TrainingMonitor(clock=clock, interval=0.25)
    for i in range(1000):   # 100 steps/s for 10 s of fake time
        clock.t = i * 0.01
        mon(i, loss=1.0 / (i + 1))
    # at most one redraw per 0.25 s: 10 s -> 40 (+1 for the first)
    assert 38 <= mon.redraws <= 41
    before = mon.redraws
    mon.flush()
    assert mon.redraws == before + 1  # the last steps were pending
    mon.flush()
    assert mon.redraws == before + 1  # nothing pending: no redraw
    # the figure holds everything logged (<= 2000 points, no downsampling here)
    sm = mon.fig.data[1]
    assert len(sm.x) == 1000 and sm.x[-1] == 999


def test_batched_figure_state_and_controls():
    clock = Clock()
    mon = TrainingMonitor(clock=clock, smoothing=0.0)
    for i in range(10):
        clock.t = i
        mon.log(i, loss=10.0 - i, val_loss=11.0 - i, acc=i / 10)
    names = [tr.name for tr in mon.fig.data]
    assert names == ["loss (raw)", "loss", "val_loss (raw)", "val_loss", "acc (raw)", "acc"]
    assert list(mon.fig.data[1].y) == [10.0 - i for i in range(10)]
    assert mon.fig.data[5].yaxis == "y2" and mon.fig.data[1].yaxis == "y"  # losses on top, others below
    mon.logy.value = True
    assert mon.fig.layout.yaxis.type == "log"
    n = mon.redraws
    mon.smooth.value = 0.9  # the slider redraws at once
    assert mon.redraws == n + 1
    assert list(mon.fig.data[1].y) == pytest.approx(ema([10.0 - i for i in range(10)], 0.9))
    assert mon.fig.data[0].visible is True


def test_progress_eta_and_throughput():
    clock = Clock()
    mon = TrainingMonitor(total=100, clock=clock)
    for i in range(50):
        clock.t = i * 0.5  # 2 steps/s
        mon.log(i, loss=1.0)
    assert mon.rate() == pytest.approx(2.0)
    assert mon.eta() == pytest.approx(25.0)  # 50 steps left at 2/s
    mon.flush()
    html = mon.progress.value
    assert "50/100" in html and "2.0 it/s" in html and "ETA 0:25" in html and "width:50.0%" in html
    assert repr(mon) == "TrainingMonitor(scalars=['loss'], logged=50, total=100)"


def test_ema_debiased():
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    assert ema([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    out = ema([1.0, float("nan"), 3.0], 0.5)
    assert math.isnan(out[1]) and out[2] == pytest.approx((0.25 + 1.5) / 0.75)
    assert ema([3.0, 4.0], 0.0) == [3.0, 4.0]


def test_export_csv_json(tmp_path):
    mon = TrainingMonitor(total=3)
    mon.log(0, loss=1.0, acc=0.5)
    mon.log(1, loss=0.5)
    mon.log(2, loss=float("nan"), acc=0.75)
    text = mon.to_csv(tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["step", "loss", "acc"], ["0", "1.0", "0.5"], ["1", "0.5", ""], ["2", "nan", "0.75"]]
    j = json.loads(mon.to_json(tmp_path / "h.json"))
    assert j == {"total": 3, "history": {"loss": [[0, 1.0], [1, 0.5], [2, None]], "acc": [[0, 0.5], [2, 0.75]]}}


def test_context_manager_flushes():
    clock = Clock()
    with TrainingMonitor(clock=clock) as mon:
        mon.log(0, loss=1.0)
        mon.log(1, loss=0.5)   # throttled (same instant)
        assert mon.redraws == 1
    assert mon.redraws == 2
    assert list(mon.fig.data[1].x) == [0, 1]


def test_repr_in_mimebundle_is_deterministic():
    mon = TrainingMonitor(total=10)
    mon.log(0, loss=0.5)
    data = mon._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert data["text/plain"] == "TrainingMonitor(scalars=['loss'], logged=1, total=10)"


def test_flushed_after_an_ipython_cell():
    from IPython.testing.globalipapp import get_ipython
    ip = get_ipython()
    ip.run_cell("from widgets import TrainingMonitor\n"
                "_m = TrainingMonitor(interval=1e9)\n"
                "_m.log(0, loss=1.0)\n"
                "_m.log(1, loss=0.5)\n"
                "_r = _m.redraws")
    assert ip.user_ns["_r"] == 1            # the second log was throttled inside the cell
    assert ip.user_ns["_m"].redraws == 2    # and drawn when the cell finished
    assert list(ip.user_ns["_m"].fig.data[1].x) == [0, 1]


def test_plot_area_follows_the_rows_in_use():
    mon = TrainingMonitor()
    mon.log(0, loss=1.0)
    mon.flush()
    assert tuple(mon.fig.layout.yaxis.domain) == (0.0, 1.0)
    mon.log(1, acc=0.5)
    mon.flush()
    assert mon.fig.layout.yaxis.domain[0] > 0.3 and mon.fig.layout.yaxis2.domain[1] > 0.3


def test_tensors_read_back_in_one_transfer(monkeypatch):
    clock = Clock()
    mon = TrainingMonitor(clock=clock, interval=1.0)
    mon.log(0, loss=0.0)
    vals = [engine.tensor(float(i)) for i in range(1, 21)]
    for i, v in enumerate(vals, 1):
        mon.log(i, loss=v, acc=engine.tensor(i, dtype=engine.int64), lr=0.1)
    calls = []
    orig_tolist, orig_item = engine.Tensor.tolist, engine.Tensor.item
    monkeypatch.setattr(engine.Tensor, "tolist", lambda self: calls.append("tolist") or orig_tolist(self))
    monkeypatch.setattr(engine.Tensor, "item", lambda self: calls.append("item") or orig_item(self))
    mon.flush()
    assert calls == ["tolist"]
    h = mon.history
    assert h["loss"][1:] == [(i, float(i)) for i in range(1, 21)]
    assert h["acc"][-1] == (20, 20.0)
