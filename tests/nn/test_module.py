"""Module core: registration, iteration, state_dict, modes, hooks, containers, repr,
compared with torch.nn.Module where behaviour is observable."""
import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
from engine.autograd.graph import walk


class TinyE(nn.Module):
    def __init__(self, tnn=nn, lib=engine):
        super().__init__()
        self.w = tnn.Parameter(lib.ones(3, 2))
        self.register_buffer("rb", lib.zeros(2))
        self.register_buffer("tmp", lib.ones(1), persistent=False)

    def forward(self, x):
        return x @ self.w + self.rb


class TinyT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, 2))
        self.register_buffer("rb", torch.zeros(2))
        self.register_buffer("tmp", torch.ones(1), persistent=False)

    def forward(self, x):
        return x @ self.w + self.rb


def nested(lib_nn, tiny):
    return lib_nn.Sequential(tiny(), lib_nn.Sequential(tiny(), tiny()), lib_nn.ModuleList([tiny()]))


def test_registration_and_iteration_match_torch():
    e, t = nested(nn, TinyE), nested(torch.nn, TinyT)
    assert [k for k, _ in e.named_parameters()] == [k for k, _ in t.named_parameters()]
    assert [k for k, _ in e.named_buffers()] == [k for k, _ in t.named_buffers()]
    assert [k for k, _ in e.named_modules()] == [k for k, _ in t.named_modules()]
    assert [k for k, _ in e.named_children()] == [k for k, _ in t.named_children()]
    assert list(e.state_dict()) == list(t.state_dict())
    assert isinstance(e.state_dict(), OrderedDict)
    assert len(list(e.parameters(recurse=False))) == 0


def test_shared_parameter_listed_once():
    a = TinyE()
    s = nn.Sequential(a, a)
    assert len(list(s.parameters())) == 1
    assert [k for k, _ in s.named_parameters(remove_duplicate=False)] == ["0.w", "1.w"]


def test_setattr_rules():
    m = TinyE()
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = engine.ones(3, 2)  # a plain tensor onto a parameter slot
    m.w = None
    assert m.w is None and "w" in m._parameters
    m.rb = engine.ones(2)  # a tensor onto a buffer name stays a buffer
    assert "rb" in m._buffers
    with pytest.raises(TypeError):
        m.rb = 3
    m.child = nn.Sequential()
    assert "child" in m._modules
    del m.child
    assert "child" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope
    with pytest.raises(KeyError):
        m.register_buffer("a.b", engine.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("p", engine.zeros(1))
    with pytest.raises(AttributeError):
        class Bad(nn.Module):
            def __init__(self):
                self.p = nn.Parameter(engine.zeros(1))
        Bad()


def test_parameter_is_a_leaf_sharing_storage():
    d = engine.randn(4)
    p = nn.Parameter(d)
    assert p.requires_grad and p.is_leaf and isinstance(p, engine.Tensor)
    with engine.no_grad():
        d.add_(1)
    assert np.allclose(p.detach().numpy(), d.numpy())
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p and np.allclose(q.detach().numpy(), p.detach().numpy())
    assert not nn.Parameter(engine.zeros(2), requires_grad=False).requires_grad


def test_state_dict_load_strict_and_keys():
    e = nested(nn, TinyE)
    sd = e.state_dict()
    assert all(not v.requires_grad for v in sd.values())
    assert e.state_dict(keep_vars=True)["0.w"] is e[0].w
    r = e.load_state_dict(sd)
    assert r.missing_keys == [] and r.unexpected_keys == [] and str(r) == "<All keys matched successfully>"
    part = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("1."))
    part["extra.w"] = engine.zeros(1)
    r = e.load_state_dict(part, strict=False)
    assert r.missing_keys == ["1.0.w", "1.0.rb", "1.1.w", "1.1.rb"] and r.unexpected_keys == ["extra.w"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.0.w"'):
        e.load_state_dict(part)
    bad = dict(sd)
    bad["0.w"] = engine.zeros(2, 2)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.w"):
        e.load_state_dict(bad)


def test_load_state_dict_copies_values_in_place():
    e = TinyE()
    w = e.w
    e.load_state_dict({"w": engine.full((3, 2), 7.0), "rb": engine.arange(2.0)})
    assert e.w is w and np.allclose(w.detach().numpy(), 7.0)
    assert np.allclose(e.rb.numpy(), [0, 1])


def test_train_eval_apply_zero_grad_requires_grad():
    e = nested(nn, TinyE)
    assert all(m.training for m in e.modules())
    e.eval()
    assert not any(m.training for m in e.modules())
    e.train()
    seen = []
    e.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("TinyE") == 4
    x = engine.randn(2, 3)
    e[0](x).sum().backward()
    assert e[0].w.grad is not None
    e.zero_grad(set_to_none=False)
    assert np.all(e[0].w.grad.numpy() == 0)
    e.zero_grad()
    assert e[0].w.grad is None
    e.requires_grad_(False)
    assert not any(p.requires_grad for p in e.parameters())


def test_to_keeps_parameter_identity_and_casts_floats():
    e = TinyE()
    w = e.w
    from engine.runtime.device import default_device
    if default_device().fp64:
        e.double()
        assert e.w is w and e.w.dtype == engine.float64 and e.rb.dtype == engine.float64
        e.to(engine.float32)
    assert e.to(engine.get_default_device()) is e
    with pytest.raises(TypeError, match="floating point"):
        e.to(engine.int64)


def test_forward_hooks_pre_hooks_and_removal():
    e = TinyE()
    calls = []
    h1 = e.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    h2 = e.register_forward_hook(lambda m, args, out: out + 1)
    h3 = e.register_forward_hook(lambda m, args, kwargs, out: calls.append(kwargs), with_kwargs=True)
    x = engine.ones(1, 3)
    assert np.allclose(e(x).detach().numpy(), 2 * 3 + 1)
    assert calls == [{}]
    for h in (h1, h2, h3):
        h.remove()
    assert np.allclose(e(x).detach().numpy(), 3)
    assert not e._forward_hooks_with_kwargs


def test_full_backward_hook_matches_torch():
    def run(lib, lnn, tiny):
        m = tiny()
        seen = []

        def hook(mod, gin, gout):
            seen.append(([None if g is None else g.detach().numpy().copy() for g in gin],
                         [g.detach().numpy().copy() for g in gout]))
            return None if gin[0] is None else (gin[0] * 3,)
        h = m.register_full_backward_hook(hook)
        x = lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
        (m(x) ** 2).sum().backward()
        gx = x.grad.detach().numpy().copy()
        # no input needs grad: the hook sees grad_input (None,)
        m(lib.ones(2, 3)).sum().backward()
        h.remove()
        m(lib.ones(2, 3)).sum().backward()
        return seen, gx
    es, egx = run(engine, nn, TinyE)
    ts, tgx = run(torch, torch.nn, TinyT)
    assert len(es) == len(ts) == 2
    for (eg, eo), (tg, to) in zip(es, ts):
        assert len(eg) == len(tg) and len(eo) == len(to)
        for a, b in zip(eg + eo, tg + to):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(egx, tgx, rtol=1e-6)


def test_graph_nodes_know_their_module():
    inner = TinyE()
    outer = nn.Sequential(inner)
    y = outer(engine.randn(2, 3, requires_grad=True)).sum()
    mods = {n.op: n.modules for n in walk(y)}
    assert mods["sum"] == ()
    assert mods["mm"] == (outer, inner)
    names = {id(m): k for k, m in outer.named_modules()}
    assert [names[id(m)] for m in mods["add"]] == ["", "0"]


def test_sequential_and_modulelist_api_match_torch():
    def build(lnn, tiny):
        s = lnn.Sequential(tiny(), tiny(), tiny())
        s.append(tiny())
        del s[1]
        s.insert(0, tiny())
        ml = lnn.ModuleList([tiny()])
        ml += [tiny(), tiny()]
        ml.insert(1, tiny())
        ml.pop(0)
        md = lnn.ModuleDict({"a": tiny()})
        md["b"] = tiny()
        return s, ml, md, s[1:3], s[-1]
    es, eml, emd, esl, elast = build(nn, TinyE)
    ts, tml, tmd, tsl, tlast = build(torch.nn, TinyT)
    assert list(es.state_dict()) == list(ts.state_dict())
    assert list(eml.state_dict()) == list(tml.state_dict())
    assert list(emd.keys()) == list(tmd.keys()) and "a" in emd
    assert isinstance(esl, nn.Sequential) and len(esl) == len(tsl) == 2
    assert elast is es[3]
    with pytest.raises(IndexError):
        es[10]
    sd = OrderedDict([("first", TinyE()), ("second", TinyE())])
    assert list(nn.Sequential(sd).state_dict())[0] == "first.w"


def test_parameterlist_and_dict():
    pl = nn.ParameterList([engine.zeros(2), nn.Parameter(engine.ones(3))])
    assert len(pl) == 2 and isinstance(pl[0], nn.Parameter) and len(list(pl.parameters())) == 2
    pd = nn.ParameterDict({"a": engine.zeros(1)})
    assert list(dict(pd.named_parameters())) == ["a"]


def test_repr_matches_torch():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(TinyE(), nn.ModuleList([TinyE()]))

        def forward(self, x):
            return x

    class NetT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(TinyT(), torch.nn.ModuleList([TinyT()]))
    assert repr(Net()).replace("TinyE", "TinyT") == repr(NetT()).replace("NetT", "Net")


def test_missing_forward_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(engine.zeros(1))


def test_get_submodule_parameter_buffer():
    e = nested(nn, TinyE)
    assert e.get_submodule("1.0") is e[1][0]
    assert e.get_parameter("1.1.w") is e[1][1].w
    assert e.get_buffer("0.rb") is e[0].rb
    with pytest.raises(AttributeError):
        e.get_submodule("9")


def test_modulelist_repr_collapses_repeats_like_torch():
    e = nn.ModuleList([TinyE(), TinyE(), nn.Sequential(), TinyE()])
    t = torch.nn.ModuleList([TinyT(), TinyT(), torch.nn.Sequential(), TinyT()])
    assert repr(e).replace("TinyE", "TinyT") == repr(t)
    assert repr(nn.ModuleList()) == "ModuleList()"
