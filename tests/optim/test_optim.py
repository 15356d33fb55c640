"""engine.optim vs torch.optim: trajectories, state_dicts, param groups, errors, launches."""
import copy
import math
import warnings

import numpy as np
import pytest
import torch

import engine

RTOL, ATOL = 1e-5, 1e-6
SHAPES = [(), (1,), (5,), (4, 3), (2, 3, 4)]


def _params(shapes=SHAPES, noncontig=True, dtype=np.float32, seed=0):
    """Same initial values as engine and torch leaves; the (4, 3) one is a transposed view."""
    rng = np.random.default_rng(seed)
    e, t = [], []
    for shp in shapes:
        a = rng.uniform(-1, 1, size=shp).astype(dtype)
        if noncontig and len(shp) == 2:
            ep = engine.tensor(np.ascontiguousarray(a.T)).t().detach().requires_grad_()
            tp = torch.tensor(np.ascontiguousarray(a.T)).t().detach().requires_grad_()
            assert not ep.is_contiguous() and not tp.is_contiguous()
        else:
            ep = engine.nn.Parameter(engine.tensor(a))
            tp = torch.nn.Parameter(torch.tensor(a))
        e.append(ep)
        t.append(tp)
    return e, t


def _grads(rng, params, dtype=np.float32):
    return [rng.normal(size=tuple(p.shape)).astype(dtype) for p in params]


def _inject(eparams, tparams, grads):
    for ep, tp, g in zip(eparams, tparams, grads):
        ep.grad = engine.tensor(g)
        tp.grad = torch.tensor(g)


def _close(eparams, tparams, msg="", rtol=RTOL, atol=ATOL):
    for i, (ep, tp) in enumerate(zip(eparams, tparams)):
        np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"{msg} param {i}")


def _close_state(eo, to, rtol=RTOL, atol=ATOL):
    es, ts = eo.state_dict(), to.state_dict()
    assert sorted(es["state"]) == sorted(ts["state"])
    for k, tst in ts["state"].items():
        est = es["state"][k]
        assert list(est) == list(tst), (list(est), list(tst))
        for name, tv in tst.items():
            ev = est[name]
            if isinstance(tv, torch.Tensor):
                assert isinstance(ev, engine.Tensor)
                assert str(ev.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1], name
                assert tuple(ev.shape) == tuple(tv.shape), name
                np.testing.assert_allclose(ev.numpy(), tv.numpy(), rtol=rtol, atol=atol, err_msg=name)
            else:
                assert ev == tv
    eg, tg = es["param_groups"], ts["param_groups"]
    assert len(eg) == len(tg)
    for a, b in zip(eg, tg):
        assert a == b


def _trajectory(name, kwargs, steps=20, shapes=SHAPES, noncontig=True, dtype=np.float32, seed=0,
                rtol=RTOL, atol=ATOL):
    ep, tp = _params(shapes, noncontig, dtype, seed)
    eo = getattr(engine.optim, name)(ep, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs)
    rng = np.random.default_rng(seed + 1)
    for s in range(steps):
        _inject(ep, tp, _grads(rng, tp, dtype))
        eo.step()
        to.step()
        _close(ep, tp, f"{name}{kwargs} step {s}", rtol, atol)
    _close_state(eo, to, rtol, atol)
    return eo, to, ep, tp


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.0, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4, weight_decay=0.1, momentum=0.5, centered=True)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=5, weight_decay=0.1, maximize=True)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_trajectory(name, kwargs):
    _trajectory(name, kwargs)


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9))])
def test_trajectory_float64(name, kwargs):
    from tests.engine.helpers import fp64
    if not fp64():
        pytest.skip("no fp64 on this device")
    _trajectory(name, kwargs, shapes=[(3,), (2, 2)], dtype=np.float64, rtol=1e-12, atol=1e-13)


def test_quadratic_loss_closure():
    """Gradients from a quadratic loss through autograd; step(closure) returns the loss."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 4)).astype(np.float32)
    b = rng.normal(size=(6,)).astype(np.float32)
    w0 = rng.normal(size=(4,)).astype(np.float32)
    res = {}
    for T in (engine, torch):
        w = T.nn.Parameter(T.tensor(w0))
        A, B = T.tensor(a), T.tensor(b)
        opt = T.optim.Adam([w], lr=0.05)

        def closure():
            opt.zero_grad()
            loss = ((A @ w - B) ** 2).sum()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(25)]
        res[T.__name__] = (losses, w.detach().numpy())
    np.testing.assert_allclose(res["engine"][0], res["torch"][0], rtol=1e-5)
    np.testing.assert_allclose(res["engine"][1], res["torch"][1], rtol=1e-5, atol=1e-6)
    assert res["engine"][0][-1] < res["engine"][0][0]


def _make_module(T, w0, b0):
    class M(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = T.nn.Parameter(T.tensor(w0))
            self.b = T.nn.Parameter(T.tensor(b0))

        def forward(self, x):
            return x @ self.w + self.b
    return M()


def test_module_training_loop():
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(2,)).astype(np.float32)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    em, tm = _make_module(engine, w0, b0), _make_module(torch, w0, b0)
    eo = engine.optim.SGD(em.parameters(), lr=0.1, momentum=0.9)
    to = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        for m, o, T in ((em, eo, engine), (tm, to, torch)):
            o.zero_grad()
            (m(T.tensor(x)) ** 2).mean().backward()
            o.step()
    _close(list(em.parameters()), list(tm.parameters()))


def test_param_groups_different_lr():
    ep, tp = _params([(3,), (2, 2), (4,)], noncontig=False)
    eo = engine.optim.SGD([{"params": ep[:2]}, {"params": ep[2:], "lr": 0.5, "momentum": 0.5}], lr=0.1, momentum=0.9)
    to = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.5, "momentum": 0.5}], lr=0.1, momentum=0.9)
    rng = np.random.default_rng(3)
    for s in range(20):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    _close(ep, tp)
    _close_state(eo, to)
    assert eo.param_groups[1]["lr"] == 0.5 and eo.param_groups[0]["lr"] == 0.1


def test_add_param_group_and_named_params():
    m = _make_module(engine, np.ones((2, 2), np.float32), np.ones(2, np.float32))
    o = engine.optim.Adam(m.named_parameters(), lr=0.1)
    assert o.param_groups[0]["param_names"] == ["w", "b"]
    assert o.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without names"):
        o.add_param_group({"params": [engine.nn.Parameter(engine.ones(1))]})
    o2 = engine.optim.SGD([m.w], lr=0.1)
    o2.add_param_group({"params": m.b, "lr": 0.01})
    assert o2.param_groups[1]["lr"] == 0.01 and o2.param_groups[1]["momentum"] == 0
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        o2.add_param_group({"params": [m.b]})


def test_missing_grad_is_skipped():
    ep, tp = _params([(3,), (2,)], noncontig=False)
    eo, to = engine.optim.Adam(ep, lr=0.1), torch.optim.Adam(tp, lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        g = _grads(rng, tp[:1])
        ep[0].grad, tp[0].grad = engine.tensor(g[0]), torch.tensor(g[0])
        eo.step()
        to.step()
    _close(ep, tp)
    assert len(eo.state_dict()["state"]) == len(to.state_dict()["state"]) == 1
    _close_state(eo, to)


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                         ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                         ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
                                         ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
                                         ("AdamW", dict(lr=0.01)), ("NAdam", dict(lr=0.01)),
                                         ("RAdam", dict(lr=0.01)), ("Adadelta", dict()), ("Adamax", dict()),
                                         ("Rprop", dict()), ("ASGD", dict(t0=4))])
def test_state_dict_round_trip(name, kwargs):
    """Save at step 10, load into a fresh optimizer on fresh params, continue, match torch."""
    ep, tp = _params()
    eo = getattr(engine.optim, name)(ep, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs)
    rng = np.random.default_rng(7)
    for _ in range(10):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    sd = copy.deepcopy(eo.state_dict())
    ep2 = [engine.nn.Parameter(p.detach().clone()) for p in ep]
    eo2 = getattr(engine.optim, name)(ep2, lr=123.0)
    eo2.load_state_dict(sd)
    assert eo2.param_groups[0]["lr"] == kwargs.get("lr", eo.defaults["lr"])
    for _ in range(12):
        g = _grads(rng, tp)
        _inject(ep2, tp, g)
        eo2.step()
        to.step()
    _close(ep2, tp)
    _close_state(eo2, to)


def _torch_sd_to_engine(sd):
    def conv(v):
        if isinstance(v, torch.Tensor):
            return engine.tensor(v.numpy())
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v
    return conv(copy.deepcopy(sd))


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("RMSprop", dict(lr=0.01, centered=True)), ("Adagrad", dict(lr=0.1)),
                                         ("NAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01)),
                                         ("ASGD", dict(lr=0.05, t0=3))])
def test_load_torch_state_dict(name, kwargs):
    ep, tp = _params()
    to = getattr(torch.optim, name)(tp, **kwargs)
    rng = np.random.default_rng(11)
    for _ in range(10):
        _inject([], [], [])
        for p, g in zip(tp, _grads(rng, tp)):
            p.grad = torch.tensor(g)
        to.step()
    for e, t in zip(ep, tp):
        with engine.no_grad():
            e.copy_(engine.tensor(t.detach().numpy()))
    eo = getattr(engine.optim, name)(ep, **kwargs)
    eo.load_state_dict(_torch_sd_to_engine(to.state_dict()))
    for _ in range(10):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    _close(ep, tp)
    _close_state(eo, to)


def test_load_state_dict_errors():
    ep, _ = _params([(2,), (3,)], noncontig=False)
    o = engine.optim.SGD(ep, lr=0.1)
    sd = o.state_dict()
    o2 = engine.optim.SGD([{"params": ep[:1]}, {"params": ep[1:]}], lr=0.1)
    with pytest.raises(ValueError, match="loaded state dict has a different number of parameter groups"):
        o2.load_state_dict(sd)
    o3 = engine.optim.SGD(ep[:1], lr=0.1)
    with pytest.raises(ValueError, match="loaded state dict contains a parameter group that doesn't match the size "
                                         "of optimizer's group"):
        o3.load_state_dict(sd)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    ep, tp = _params([(3,), (2, 2)], noncontig=False)
    eo, to = engine.optim.SGD(ep, lr=0.1), torch.optim.SGD(tp, lr=0.1)
    _inject(ep, tp, _grads(np.random.default_rng(0), tp))
    g0 = ep[0].grad
    eo.zero_grad(set_to_none=set_to_none)
    to.zero_grad(set_to_none=set_to_none)
    for e, t in zip(ep, tp):
        if set_to_none:
            assert e.grad is None and t.grad is None
        else:
            np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    if not set_to_none:
        assert ep[0].grad is g0
    engine.optim.SGD(ep, lr=0.1).zero_grad()  # default set_to_none=True
    assert ep[0].grad is None


def test_errors():
    p = engine.nn.Parameter(engine.ones(2))
    for T in (engine, torch):
        q = T.nn.Parameter(T.ones(2))
        with pytest.raises(ValueError, match="Invalid learning rate: -1"):
            T.optim.SGD([q], lr=-1)
        with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
            T.optim.Adam([q], lr=-0.1)
        with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
            T.optim.Adam([q], betas=(1.0, 0.9))
        with pytest.raises(ValueError, match="Invalid beta parameter at index 1: -0.1"):
            T.optim.AdamW([q], betas=(0.9, -0.1))
        with pytest.raises(ValueError, match="Invalid epsilon value: -1"):
            T.optim.Adam([q], eps=-1)
        with pytest.raises(ValueError, match="Invalid weight_decay value: -1"):
            T.optim.SGD([q], lr=0.1, weight_decay=-1)
        with pytest.raises(ValueError, match="Invalid momentum value: -1"):
            T.optim.SGD([q], lr=0.1, momentum=-1)
        with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
            T.optim.SGD([q], lr=0.1, nesterov=True)
        with pytest.raises(ValueError, match="Invalid alpha value: -1"):
            T.optim.RMSprop([q], alpha=-1)
        with pytest.raises(ValueError, match="Invalid lr_decay value: -1"):
            T.optim.Adagrad([q], lr_decay=-1)
        with pytest.raises(ValueError, match="Invalid initial_accumulator_value value: -1"):
            T.optim.Adagrad([q], initial_accumulator_value=-1)
        with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
            T.optim.SGD([], lr=0.1)
        with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable of "
                                            "Tensors or dicts, but got torch.FloatTensor"):
            T.optim.SGD(q, lr=0.1)
        with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
            T.optim.SGD([{"params": [q]}, {"params": [q]}], lr=0.1)
        with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
            T.optim.SGD([q * 2], lr=0.1)
        with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is int"):
            T.optim.SGD([q, 3], lr=0.1)
        with pytest.raises(TypeError, match="optimizer parameters need to be organized in ordered collections"):
            T.optim.SGD([{"params": {q}}], lr=0.1)
    assert p.grad is None


def test_defaults_and_repr():
    p = engine.nn.Parameter(engine.ones(2))
    tp = torch.nn.Parameter(torch.ones(2))
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD"):
        e = getattr(engine.optim, name)([p])
        t = getattr(torch.optim, name)([tp])
        assert e.defaults == t.defaults, name
        assert repr(e) == repr(t), name
    assert engine.optim.AdamW([p]).defaults["weight_decay"] == 0.01


def test_version_counter_and_no_graph():
    p = engine.nn.Parameter(engine.ones(3))
    o = engine.optim.Adam([p], lr=0.1)
    p.grad = engine.ones(3)
    v = p._version
    o.step()
    assert p._version > v
    assert p.grad_fn is None and p.requires_grad and p.is_leaf
    st = o.state[p]
    assert float(st["step"]) == 1.0 and st["step"].dtype == engine.float32 and st["step"].shape == ()


def test_step_hooks():
    p = engine.nn.Parameter(engine.ones(2))
    o = engine.optim.SGD([p], lr=0.1)
    calls = []
    h1 = o.register_step_pre_hook(lambda opt, a, k: calls.append("pre"))
    o.register_step_post_hook(lambda opt, a, k: calls.append("post"))
    p.grad = engine.ones(2)
    o.step()
    h1.remove()
    o.step()
    assert calls == ["pre", "post", "post"]


def test_one_program_per_variant_and_one_launch_per_param():
    from engine.runtime import launch as L
    ep, tp = _params([(3,), (4, 5), (7,)], noncontig=False, seed=3)
    o = engine.optim.Adam(ep, lr=0.01, betas=(0.85, 0.995))  # a variant no other test builds first
    dev = ep[0]._storage.device
    rng = np.random.default_rng(0)
    _inject(ep, tp, _grads(rng, tp))
    o.step()
    builds = dev.programs.builds
    for i in range(5):
        _inject(ep, tp, _grads(rng, tp))
        o.param_groups[0]["lr"] = 0.01 / (i + 1)  # changing hyperparameters: no new program
        L.start_profiling()
        o.step()
        recs = L.stop_profiling()
        assert [r[0] for r in recs] == ["optim_adam"]  # one launch for the whole group
    assert dev.programs.builds == builds
    keys = [k for k in dev.programs.kernels if k[0] == "optim" and k[1] == "adam"]
    assert len(keys) == len(set(keys))


def test_noncontiguous_param_uses_views():
    base = engine.zeros(4, 6)
    view = base[:, ::2]
    view.requires_grad_()
    o = engine.optim.SGD([view], lr=1.0)
    view.grad = -engine.ones(4, 3)
    o.step()
    np.testing.assert_array_equal(base.numpy()[:, ::2], np.ones((4, 3)))
    np.testing.assert_array_equal(base.numpy()[:, 1::2], np.zeros((4, 3)))


def test_lr_as_tensor_and_deepcopy():
    ep, tp = _params([(3,)], noncontig=False)
    eo = engine.optim.SGD(ep, lr=engine.tensor(0.1))
    to = torch.optim.SGD(tp, lr=torch.tensor(0.1))
    rng = np.random.default_rng(0)
    for _ in range(5):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    _close(ep, tp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy.deepcopy(engine.optim.Adam(ep).state_dict())


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                         ("Adagrad", dict(lr=0.1)), ("RMSprop", dict(lr=0.01, centered=True))])
def test_many_params_chunked_launches(name, kwargs):
    """More parameters than one launch takes (including an empty one): chunked launches, same result."""
    from engine.runtime import launch as L
    shapes = [(i % 4 + 1, 3) if i % 3 else (i + 1,) for i in range(19)] + [(0,), ()]
    ep, tp = _params(shapes, noncontig=False, seed=9)
    eo = getattr(engine.optim, name)(ep, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs)
    rng = np.random.default_rng(2)
    for s in range(20):
        _inject(ep, tp, _grads(rng, tp))
        if s == 19:
            L.start_profiling()
        eo.step()
        to.step()
    recs = L.stop_profiling()
    _close(ep, tp)
    _close_state(eo, to)
    n_launch = len([r for r in recs if r[0].startswith("optim_")])
    ks = {k[-1] for k in ep[0]._storage.device.programs.kernels if k[0] == "optim" and k[1] == name.lower()}
    assert any(n_launch == -(-len(shapes) // K) for K in ks) and n_launch < len(shapes), (n_launch, ks)


def test_strided_and_expanded_grads():
    ep, tp = _params([(3, 4), (4,)], noncontig=False)
    eo, to = engine.optim.Adam(ep, lr=0.1), torch.optim.Adam(tp, lr=0.1)
    rng = np.random.default_rng(4)
    for _ in range(5):
        g = rng.normal(size=(4, 3)).astype(np.float32)
        ep[0].grad, tp[0].grad = engine.tensor(g).t(), torch.tensor(g).t()
        v = rng.normal(size=(1,)).astype(np.float32)
        ep[1].grad, tp[1].grad = engine.tensor(v).expand(4), torch.tensor(v).expand(4)
        eo.step()
        to.step()
    _close(ep, tp)
    _close_state(eo, to)


def test_old_format_float_step():
    ep, tp = _params([(3,)], noncontig=False)
    eo, to = engine.optim.Adam(ep, lr=0.1), torch.optim.Adam(tp, lr=0.1)
    rng = np.random.default_rng(1)
    for _ in range(3):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    sd = eo.state_dict()
    sd["state"][0]["step"] = 3.0  # a pre-1.12 checkpoint stored a Python number
    eo2 = engine.optim.Adam([engine.nn.Parameter(ep[0].detach().clone())], lr=0.1)
    eo2.load_state_dict(sd)
    st = eo2.state_dict()["state"][0]["step"]
    assert isinstance(st, engine.Tensor) and st.dtype == engine.float32 and float(st) == 3.0
    p2 = eo2.param_groups[0]["params"]
    for _ in range(3):
        g = _grads(rng, tp)
        _inject(p2, tp, g)
        eo2.step()
        to.step()
    _close(p2, tp)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs(line_search_fn):
    """LBFGS (torch's algorithm on engine ops) on a least-squares problem, vs torch."""
    rng = np.random.default_rng(8)
    a = rng.normal(size=(10, 4)).astype(np.float32)
    b = rng.normal(size=(10,)).astype(np.float32)
    w0 = rng.normal(size=(4,)).astype(np.float32)
    out = {}
    for T in (engine, torch):
        w = T.nn.Parameter(T.tensor(w0))
        c = T.nn.Parameter(T.tensor(np.float32(0.5)))
        A, B = T.tensor(a), T.tensor(b)
        opt = T.optim.LBFGS([w, c], lr=0.5, max_iter=5, history_size=4, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = ((A @ w + c - B) ** 2).mean()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(4)]
        out[T.__name__] = (losses, w.detach().numpy(), opt.state_dict()["state"][0]["func_evals"])
    np.testing.assert_allclose(out["engine"][0], out["torch"][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["engine"][1], out["torch"][1], rtol=1e-4, atol=1e-5)
    assert out["engine"][2] == out["torch"][2]


def test_save_load_and_deepcopy(tmp_path):
    ep, tp = _params([(3,), (2, 2)], noncontig=False)
    eo, to = engine.optim.AdamW(ep, lr=0.05), torch.optim.AdamW(tp, lr=0.05)
    rng = np.random.default_rng(6)
    for _ in range(4):
        _inject(ep, tp, _grads(rng, tp))
        eo.step()
        to.step()
    engine.save(eo.state_dict(), tmp_path / "opt.pt")
    eo2 = engine.optim.AdamW(ep, lr=1.0)
    eo2.load_state_dict(engine.load(tmp_path / "opt.pt"))
    eo3 = copy.deepcopy(eo2)
    assert eo3.param_groups[0]["lr"] == 0.05 and len(eo3.state) == 2
    for _ in range(4):
        _inject(ep, tp, _grads(rng, tp))
        eo2.step()
        to.step()
    _close(ep, tp)
    _close_state(eo2, to)


def test_unsupported_dtype_message():
    p = engine.nn.Parameter(engine.ones(3, dtype=engine.float64))
    if not p._storage.device.fp64:
        pytest.skip("no fp64")
    p.grad = engine.ones(3, dtype=engine.float64)
    engine.optim.Adam([p]).step()  # float64 works
    q = engine.ones(3, dtype=engine.int32)
    q.grad = engine.ones(3, dtype=engine.int32)
    with pytest.raises(TypeError, match="int32 are not supported|dtype"):
        engine.optim.SGD([q], lr=0.1).step()


def test_custom_optimizer_subclass():
    """A PyTorch-style user optimizer built on the base class and tensor ops."""
    results = []
    for T in (engine, torch):
        class MySGD(T.optim.Optimizer):
            def __init__(self, params, lr=0.1, decay=0.5):
                super().__init__(params, dict(lr=lr, decay=decay))

            @T.no_grad()
            def step(self, closure=None):
                loss = None
                if closure is not None:
                    with T.enable_grad():
                        loss = closure()
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        st = self.state[p]
                        st["n"] = st.get("n", 0) + 1
                        p.add_(p.grad, alpha=-group["lr"] * group["decay"] ** st["n"])
                return loss

        w = T.nn.Parameter(T.tensor([1.0, -2.0, 3.0]))
        opt = MySGD([w], lr=0.5)
        for _ in range(5):
            opt.zero_grad()
            (w ** 2).sum().backward()
            opt.step()
        sd = opt.state_dict()
        assert sd["state"] == {0: {"n": 5}} and sd["param_groups"][0]["decay"] == 0.5
        results.append(w.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_long_index_kernels_build():
    """The 64-bit-index variants (tensors past 2**31 bytes) compile."""
    from engine.optim._kernels import gen_source, slots_per_launch
    dev = engine.ones(1)._storage.device
    for kind, flags in (("adam", {"wd": True, "decoupled": False, "amsgrad": True, "maximize": True}),
                        ("sgd", {"wd": True, "momentum": True, "nesterov": True, "maximize": False})):
        fl = tuple(sorted(flags.items()))
        has_step = kind != "sgd"
        K = slots_per_launch(kind, fl, "float", "long", has_step)
        src, name = gen_source(kind, fl, "float", "long", has_step, K)
        assert dev.programs.build(src, name) is not None


def test_linear_classifier_adamw_onecycle():
    """A PyTorch-style loop: nn.Linear + CrossEntropyLoss + AdamW + OneCycleLR + clip, vs torch."""
    if not hasattr(engine.nn, "Linear") or not hasattr(engine.nn, "CrossEntropyLoss"):
        pytest.skip("engine.nn.Linear not available")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    w0 = rng.normal(size=(3, 5)).astype(np.float32) * 0.3
    b0 = np.zeros(3, np.float32)
    out = []
    for T in (engine, torch):
        m = T.nn.Linear(5, 3)
        with T.no_grad():
            m.weight.copy_(T.tensor(w0))
            m.bias.copy_(T.tensor(b0))
        opt = T.optim.AdamW(m.parameters(), lr=0.05, weight_decay=0.05)
        sched = T.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
        lossf = T.nn.CrossEntropyLoss()
        X, Y = T.tensor(x), T.tensor(y)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = lossf(m(X), Y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        out.append((losses, m.weight.detach().numpy(), opt.param_groups[0]["lr"]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)
    assert math.isclose(out[0][2], out[1][2], rel_tol=1e-12)
    assert out[0][0][-1] < out[0][0][0]
