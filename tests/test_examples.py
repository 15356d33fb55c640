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
    assert abs(r["unigram_entropy"] - r["unigram_loss"]) < 0.1
    assert r["val_loss"] < r["unigram_loss"] - 0.7, r  # well below the unigram model
    assert r["val_loss"] < r["bigram_loss"], r
    assert len(r["sample"]) == 40
    _check_rate(r)


@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
def test_gpt(attention, tmp_path):
    ckpt = tmp_path / "gpt.pt"
    steps = 40 if attention == "sdpa" else 30
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


@pytest.mark.parametrize("explicit", [False, True], ids=["sdpa", "explicit"])
def test_gpt_matches_pytorch(explicit):
    """The example GPT on clgrad, given PyTorch's initial weights, gives PyTorch's loss, gradients norm and
    parameters after a clipped AdamW step."""
    pytest.importorskip("torch")
    import numpy as np
    backend, gpt = _example("_backend"), _example("gpt")
    sides = {}
    for name, use_torch in (("torch", True), ("clgrad", False)):
        torch, nn, F, _, _ = backend.get_backend(use_torch)
        torch.manual_seed(0)
        model = gpt.define_gpt(torch, nn, F)(59, block_size=16, n_embd=32, n_head=4, n_layer=2,
                                             explicit_attention=explicit)
        sides[name] = (torch, nn, model)
    t_model, e_torch = sides["torch"][2], sides["clgrad"][0]
    sides["clgrad"][2].load_state_dict({k: e_torch.tensor(v.detach().numpy()) for k, v in t_model.state_dict().items()})
    rng = np.random.default_rng(0)
    idx, tgt = rng.integers(0, 59, (4, 16)), rng.integers(0, 59, (4, 16))
    out = {}
    for name, (torch, nn, model) in sides.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
        logits, loss = model(torch.tensor(idx), torch.tensor(tgt))
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
        opt.step()
        out[name] = (logits.detach().numpy(), loss.item(), float(norm), grads,
                     {k: v.detach().numpy() for k, v in model.state_dict().items()})
    (tl, tloss, tnorm, tgrads, tparams), (el, eloss, enorm, egrads, eparams) = out["torch"], out["clgrad"]
    np.testing.assert_allclose(el, tl, rtol=1e-4, atol=1e-5)
    assert eloss == pytest.approx(tloss, rel=1e-5)
    assert enorm == pytest.approx(tnorm, rel=1e-4)
    for k in tgrads:
        np.testing.assert_allclose(egrads[k], tgrads[k], rtol=1e-3, atol=1e-6, err_msg=k)
    for k in tparams:
        # a first Adam step moves each weight by ~lr * sign(grad): float noise may flip the sign of a
        # ~0 gradient, so compare the mean difference (a real error moves every weight)
        assert np.abs(eparams[k] - tparams[k]).mean() < 1e-5, k


@pytest.mark.parametrize("example", ["mlp_digits", "cnn_digits", "char_lm"])
def test_sequential_models_match_pytorch(example):
    """Each example's model on clgrad, given PyTorch's initial weights, gives PyTorch's gradients and losses."""
    pytest.importorskip("torch")
    import numpy as np
    backend, ex = _example("_backend"), _example(example)
    rng = np.random.default_rng(0)
    if example == "mlp_digits":
        args, x = (), rng.random((32, 64), dtype=np.float32)
    elif example == "cnn_digits":
        args, x = (), rng.random((32, 1, 8, 8), dtype=np.float32)
    else:
        args, x = (59,), rng.integers(0, 59, (32, 8))
    y = rng.integers(0, 59 if example == "char_lm" else 10, 32)
    out = {}
    weights = None
    for name, use_torch in (("torch", True), ("clgrad", False)):
        torch, nn, F, _, _ = backend.get_backend(use_torch)
        model = ex.make_model(nn, *args)
        if weights is None:
            weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}  # (numpy shares memory)
        else:
            model.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses, grads = [], None
        for _ in range(2):
            loss = F.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
            opt.zero_grad()
            loss.backward()
            if grads is None:
                grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
            opt.step()
            losses.append(loss.item())
        out[name] = losses, grads, {k: v.detach().numpy() for k, v in model.state_dict().items()}
    (tl, tg, tp), (el, eg, ep) = out["torch"], out["clgrad"]
    np.testing.assert_allclose(el, tl, rtol=1e-4)
    for k in tg:
        np.testing.assert_allclose(eg[k], tg[k], rtol=1e-3, atol=1e-6, err_msg=k)
    for k in tp:
        # Adam moves each weight by ~lr * sign-ish(grad): float noise may flip a ~0 gradient's update,
        # so compare the mean difference (a real error moves every weight by ~lr = 1e-2)
        assert np.abs(ep[k] - tp[k]).mean() < 1e-4, k
