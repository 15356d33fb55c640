"""engine.optim.lr_scheduler vs torch.optim.lr_scheduler: identical lr (and momentum) sequences."""
import math
import pickle
import warnings

import numpy as np
import pytest
import torch

import engine

S = engine.optim.lr_scheduler
TS = torch.optim.lr_scheduler


def _opts(name="SGD", groups=2, **kw):
    ep = [engine.nn.Parameter(engine.ones(2)) for _ in range(groups)]
    tp = [torch.nn.Parameter(torch.ones(2)) for _ in range(groups)]
    eg = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ep)]
    tg = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(tp)]
    return getattr(engine.optim, name)(eg, **kw), getattr(torch.optim, name)(tg, **kw)


def _close(a, b, rel=1e-12):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert math.isclose(x, y, rel_tol=rel, abs_tol=1e-15), (a, b)


def _groups_hp(opt, key):
    out = []
    for g in opt.param_groups:
        v = g[key]
        out += list(v) if isinstance(v, tuple) else [v]
    return out


def _run(make, steps=30, name="SGD", opt_kw=None, metrics=None, keys=("lr",)):
    opt_kw = opt_kw if opt_kw is not None else ({"momentum": 0.9} if name == "SGD" else {})
    eo, to = _opts(name, **opt_kw)
    es, ts = make(S, eo), make(TS, to)
    for k in keys:
        _close(_groups_hp(eo, k), _groups_hp(to, k))
    for i in range(steps):
        eo.step()
        to.step()
        if metrics is not None:
            es.step(metrics[i])
            ts.step(metrics[i])
        else:
            es.step()
            ts.step()
        for k in keys:
            _close(_groups_hp(eo, k), _groups_hp(to, k))
        if hasattr(ts, "get_last_lr") and not isinstance(ts, TS.ReduceLROnPlateau) or hasattr(ts, "_last_lr"):
            _close(es.get_last_lr(), ts.get_last_lr())
    return eo, to, es, ts


SCHEDULERS = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "LambdaLR": lambda M, o: M.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e + 0.01 * e),
    "LambdaLR-list": lambda M, o: M.LambdaLR(o, lr_lambda=[lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "MultiplicativeLR": lambda M, o: M.MultiplicativeLR(o, lr_lambda=lambda e: 0.97),
    "LinearLR": lambda M, o: M.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=12),
    "ConstantLR": lambda M, o: M.ConstantLR(o, factor=0.4, total_iters=5),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, total_iters=15, power=2.0),
    "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.01),
    "CyclicLR": lambda M, o: M.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=4, mode="triangular2"),
    "SequentialLR": lambda M, o: M.SequentialLR(o, [M.LinearLR(o, start_factor=0.1, total_iters=5),
                                                     M.CosineAnnealingLR(o, T_max=10)], milestones=[5]),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler([M.ExponentialLR(o, gamma=0.9),
                                                         M.StepLR(o, step_size=4, gamma=0.5)]),
}


@pytest.mark.parametrize("key", list(SCHEDULERS))
def test_schedule_matches_torch(key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(SCHEDULERS[key], keys=("lr", "momentum") if key == "CyclicLR" else ("lr",))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_one_cycle(strategy, three_phase, name):
    key = "momentum" if name == "SGD" else "betas"

    def make(M, o):
        return M.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=25, anneal_strategy=strategy,
                            three_phase=three_phase, pct_start=0.3, div_factor=10, final_div_factor=100)
    _run(make, steps=25, name=name, keys=("lr", key))


def test_one_cycle_epochs_and_errors():
    _run(lambda M, o: M.OneCycleLR(o, max_lr=0.3, epochs=3, steps_per_epoch=8, cycle_momentum=False), steps=24)
    eo, to = _opts("SGD", momentum=0.9)
    for M, o in ((S, eo), (TS, to)):
        s = M.OneCycleLR(o, max_lr=0.3, total_steps=3)
        o.step()
        for _ in range(3):
            s.step()
        with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
            s.step()
    for M, o in ((S, eo), (TS, to)):
        with pytest.raises(ValueError, match="You must define either total_steps OR"):
            M.OneCycleLR(o, max_lr=0.1)
    e1, t1 = _opts("Adagrad")
    for M, o in ((S, e1), (TS, t1)):
        with pytest.raises(ValueError, match="optimizer must support momentum"):
            M.OneCycleLR(o, max_lr=0.1, total_steps=10)


def test_reduce_lr_on_plateau():
    rng = np.random.default_rng(0)
    metrics = list(1.0 / (1 + np.arange(40) * 0.1) + rng.normal(size=40) * 0.05)
    metrics[10:20] = [metrics[9]] * 10
    for kw in (dict(), dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=2,
                             min_lr=[0.01, 0.02], eps=1e-4),
               dict(patience=0, factor=0.7, cooldown=1, threshold_mode="rel", threshold=0.05, min_lr=0.003)):
        _run(lambda M, o, kw=kw: M.ReduceLROnPlateau(o, **kw), steps=40, metrics=metrics)
    # engine scalar tensors as the metric
    eo, _ = _opts()
    s = S.ReduceLROnPlateau(eo, patience=0)
    s.step(engine.tensor(1.0))
    s.step(engine.tensor(2.0))
    assert eo.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        S.ReduceLROnPlateau(eo, factor=1.0)
    with pytest.raises(ValueError, match="mode foo is unknown!"):
        S.ReduceLROnPlateau(eo, mode="foo")


def test_plateau_epoch_argument_and_module_names():
    # step(metric, epoch) sets last_epoch and warns as torch does (the warning text lives in lr_scheduler.py,
    # the class in lr_plateau_cyclic.py); every class answers to torch's module path
    eo, _ = _opts()
    to = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    e, t = S.ReduceLROnPlateau(eo), TS.ReduceLROnPlateau(to)
    with warnings.catch_warnings(record=True) as we:
        warnings.simplefilter("always")
        e.step(1.0, epoch=5)
    with warnings.catch_warnings(record=True) as wt:
        warnings.simplefilter("always")
        t.step(1.0, epoch=5)
    assert [str(w.message) for w in we] == [str(w.message) for w in wt] and we
    assert e.last_epoch == t.last_epoch == 5
    for name in S.__all__:
        assert getattr(S, name).__module__ == "engine.optim.lr_scheduler", name


@pytest.mark.parametrize("key", ["StepLR", "CosineAnnealingLR", "LambdaLR", "CyclicLR"])
def test_state_dict_round_trip(key):
    make = SCHEDULERS[key]
    eo, to = _opts("SGD", momentum=0.9)
    es, ts = make(S, eo), make(TS, to)
    for _ in range(10):
        eo.step()
        to.step()
        es.step()
        ts.step()
    sd = es.state_dict()
    assert "optimizer" not in sd
    assert set(sd) == set(ts.state_dict())
    # a fresh optimizer + scheduler resumes from the saved state
    eo2, _ = _opts("SGD", momentum=0.9)
    eo2.load_state_dict(eo.state_dict())
    es2 = make(S, eo2)
    es2.load_state_dict(pickle.loads(pickle.dumps(sd)) if key not in ("LambdaLR", "CyclicLR") else sd)
    for _ in range(15):
        eo2.step()
        to.step()
        es2.step()
        ts.step()
        _close(es2.get_last_lr(), ts.get_last_lr())
        _close(_groups_hp(eo2, "lr"), _groups_hp(to, "lr"))


def test_plateau_state_dict_round_trip():
    eo, to = _opts()
    es, ts = S.ReduceLROnPlateau(eo, patience=1), TS.ReduceLROnPlateau(to, patience=1)
    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.8, 0.85, 0.86, 0.87, 0.88, 0.9, 0.91, 0.92]
    for m in metrics[:6]:
        es.step(m)
        ts.step(m)
    es2 = S.ReduceLROnPlateau(eo, patience=1)
    es2.load_state_dict(es.state_dict())
    for m in metrics[6:]:
        es2.step(m)
        ts.step(m)
        _close(_groups_hp(eo, "lr"), _groups_hp(to, "lr"))
    assert set(es.state_dict()) == set(ts.state_dict())


def test_base_behaviour():
    eo, _ = _opts()
    s = S.StepLR(eo, step_size=2)
    assert all("initial_lr" in g for g in eo.param_groups)
    assert s.last_epoch == 0 and s.base_lrs == [0.1, 0.2]
    with pytest.raises(TypeError, match="int is not an Optimizer"):
        S.StepLR(3, step_size=2)
    e2, _ = _opts()
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        S.StepLR(e2, step_size=2, last_epoch=3)
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`"):
        s.step()
    assert isinstance(s, S.LRScheduler)
