"""engine.manual_seed makes whole training runs (init, shuffling, dropout) reproducible."""
import numpy as np
import pytest

import engine
from engine.utils.data import DataLoader, TensorDataset


class TinyNet(engine.nn.Module):
    """Two layers from raw Parameters and engine ops, with bernoulli dropout."""

    def __init__(self, d_in=6, d_hidden=16, d_out=1, p=0.3):
        super().__init__()
        self.w1 = engine.nn.Parameter(engine.randn(d_in, d_hidden) * (1.0 / d_in ** 0.5))
        self.b1 = engine.nn.Parameter(engine.zeros(d_hidden))
        self.w2 = engine.nn.Parameter(engine.randn(d_hidden, d_out) * (1.0 / d_hidden ** 0.5))
        self.b2 = engine.nn.Parameter(engine.zeros(d_out))
        self.p = p

    def forward(self, x):
        h = (x @ self.w1 + self.b1).relu()
        if self.training:
            keep = engine.bernoulli(engine.full(h.shape, 1.0 - self.p))
            h = h * keep / (1.0 - self.p)
        return h @ self.w2 + self.b2


def _data():
    rng = np.random.default_rng(0)  # fixed data; only engine's RNG varies between runs
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = (x @ rng.standard_normal((6, 1)) + 0.1).astype(np.float32)
    return engine.tensor(x), engine.tensor(y)


def _train(seed, make_model, epochs=3):
    engine.manual_seed(seed)
    x, y = _data()
    model = make_model()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    losses = []
    lr = 0.05
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            loss = ((model(xb) - yb) ** 2).mean()
            for p in model.parameters():
                p.grad = None
            loss.backward()
            with engine.no_grad():
                for p in model.parameters():
                    p.sub_(lr * p.grad)
            losses.append(loss.item())
    model.eval()
    with engine.no_grad():
        final = model(x).numpy()
    return losses, final


def test_training_run_reproducible():
    l1, f1 = _train(0, TinyNet)
    l2, f2 = _train(0, TinyNet)
    assert len(l1) == 15
    assert l1 == l2  # bit-identical losses
    np.testing.assert_array_equal(f1, f2)
    l3, _ = _train(1, TinyNet)
    assert l3 != l1  # a different seed really changes init/shuffle/dropout
    assert l1[-1] < l1[0]  # and it trains


def test_rng_state_restore_replays_epoch():
    engine.manual_seed(3)
    ds = TensorDataset(engine.arange(30))
    loader = DataLoader(ds, batch_size=7, shuffle=True)
    state = engine.get_rng_state()
    a = [b[0].tolist() for b in loader]
    mask_a = engine.bernoulli(engine.full((50,), 0.5)).tolist()
    engine.set_rng_state(state)
    b = [b[0].tolist() for b in loader]
    mask_b = engine.bernoulli(engine.full((50,), 0.5)).tolist()
    assert a == b and mask_a == mask_b


def test_training_with_nn_layers_reproducible():
    nn = engine.nn
    if not all(hasattr(nn, n) for n in ("Linear", "Dropout", "ReLU", "Sequential")) or not hasattr(engine.optim, "SGD"):
        pytest.skip("nn.Linear / nn.Dropout / optim.SGD not available yet")

    def run(seed):
        engine.manual_seed(seed)
        x, y = _data()
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
        opt = engine.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(2):
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True):
                opt.zero_grad()
                loss = ((model(xb) - yb) ** 2).mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses

    try:  # nn layers are being written concurrently: skip (don't fail) while they can't run at all
        first = run(0)
    except (AttributeError, NotImplementedError, ImportError) as ex:
        pytest.skip(f"nn layers not usable yet: {type(ex).__name__}: {ex}")
    assert first == run(0)
    assert first != run(1)
