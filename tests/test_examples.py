"""The examples/ scripts train to their target metrics on clgrad (small settings).

Each example's main(argv) runs the same PyTorch-style code it runs with --torch; here it runs on
clgrad's default device.  Settings are chosen so the thresholds hold with margin (checked over
several seeds on PyTorch and on clgrad).
"""
import importlib
import importlib.util
import math
import os
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")


def _example(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    return importlib.import_module(name)


def _check_rate(r):
    assert r["steps_per_s"] > 0 and math.isfinite(r["steps_per_s"])


def test_backend_switch():
    backend = _example("_backend")
    torch, nn, F, DataLoader, TensorDataset = backend.get_backend(False)
    assert torch.__name__ == "engine" and nn.__name__ == "engine.nn"
    assert F.__name__ == "engine.nn.functional"
    assert DataLoader.__module__.startswith("engine.utils.data")
    assert TensorDataset.__module__.startswith("engine.utils.data")


def test_mlp_digits():
    r = _example("mlp_digits").main(["--quiet", "--epochs", "12"])
    assert r["accuracy"] >= 0.95, r
    _check_rate(r)


def test_cnn_digits():
    r = _example("cnn_digits").main(["--quiet", "--epochs", "10"])
    assert r["accuracy"] >= 0.95, r
    _check_rate(r)


def test_char_lm():
    r = _example("char_lm").main(["--quiet", "--steps", "400", "--sample-chars", "40"])
    assert r["unigram_loss"] > 3.0  # ~3.31 nats/char on this text
    assert r["val_loss"] < r["unigram_loss"] - 0.7, r  # well below the unigram model
    assert r["val_loss"] < r["bigram_loss"], r
    assert len(r["sample"]) == 40
    _check_rate(r)


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
def test_gpt(attention, tmp_path):
    ckpt = tmp_path / "gpt.pt"
    steps = 50 if attention == "sdpa" else 30
    r = _example("gpt").main(["--quiet", "--steps", str(steps), "--sample-chars", "40", "--attention", attention,
                              "--checkpoint", str(ckpt)])
    assert r["val_loss_before"] > 3.8  # ~log(59) at init
    assert r["val_loss"] < r["val_loss_before"] - 1.0, r
    assert r["last_loss"] < r["first_loss"] - 1.0, r
    assert len(r["sample"]) == 40
    assert ckpt.exists()
    assert r["reloaded_val_loss"] == pytest.approx(r["val_loss"], abs=1e-4)
    _check_rate(r)


def test_benchmark_models_smoke():
    """benchmarks/models.py times a model on both backends and reports one row per model."""
    pytest.importorskip("torch")
    path = os.path.join(os.path.dirname(EXAMPLES), "benchmarks", "models.py")
    spec = importlib.util.spec_from_file_location("clgrad_benchmark_models", path)
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)

    import engine
    rows = []
    models.run_models(lambda *a: rows.append(a), engine.synchronize, lambda: None, only={"mlp"}, min_time=0.05, reps=1)
    assert len(rows) == 1
    name, unit, e_rate, t_rate = rows[0]
    assert "mlp" in name and unit == "steps/s" and e_rate > 0 and t_rate > 0
