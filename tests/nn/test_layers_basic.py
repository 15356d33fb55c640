"""Linear/Bilinear/Identity, activations, dropout, Embedding, Flatten and their functional forms,
compared with torch (identical weights copied in): forward, input grads and parameter grads."""
import math
import warnings

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.helpers import assert_close, check_op, kernel_names
from tests.nn.helpers import check_functional, check_module, randn


# ---- Linear / Bilinear / Identity -------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,), (1, 4), (0, 4), (2, 0, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    check_module(nn.Linear(4, 3, bias=bias), torch.nn.Linear(4, 3, bias=bias), randn(*shape))


def test_linear_noncontig_input():
    def f(T, x, w, b):
        return T.nn.functional.linear(x, w, b)
    check_op(f, randn(4, 5), randn(3, 5), randn(3), noncontig=True, rtol=1e-5, atol=1e-5)
    check_op(lambda T, x, w: T.nn.functional.linear(x.transpose(0, 1), w), randn(4, 2, 3), randn(5, 3),
             rtol=1e-5, atol=1e-5)


def test_linear_errors_and_repr():
    lin = nn.Linear(4, 3)
    with pytest.raises(RuntimeError):
        lin(engine.zeros(2, 5))
    assert repr(lin) == repr(torch.nn.Linear(4, 3))
    assert repr(nn.Linear(4, 3, bias=False)) == repr(torch.nn.Linear(4, 3, bias=False))
    assert lin.bias is not None and nn.Linear(2, 2, bias=False).bias is None
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert lin.weight.shape == (3, 4) and lin.weight.requires_grad
    assert nn.Linear(2, 3, dtype=engine.float64).weight.dtype == engine.float64
    assert nn.Linear(2, 3, device="cpu" if False else None).weight.dtype == engine.float32


def test_linear_default_init_distribution():
    lin = nn.Linear(256, 512)
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    bound = 1 / math.sqrt(256)   # kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in)
    assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(b).max() <= bound and b.std() > 0.4 * bound


def test_identity():
    m = nn.Identity(3, some=4)
    x = engine.randn(2, 3)
    assert m(x) is x
    assert repr(m) == repr(torch.nn.Identity())


def test_bilinear():
    check_module(nn.Bilinear(3, 4, 2), torch.nn.Bilinear(3, 4, 2), randn(5, 3), randn(5, 4))
    check_module(nn.Bilinear(3, 4, 2, bias=False), torch.nn.Bilinear(3, 4, 2, bias=False), randn(2, 5, 3),
                 randn(2, 5, 4))
    assert repr(nn.Bilinear(3, 4, 2)) == repr(torch.nn.Bilinear(3, 4, 2))


# ---- activations -------------------------------------------------------------------------------
ACTS = [("ReLU", (), {}), ("ReLU6", (), {}), ("LeakyReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("ELU", (), {}),
        ("ELU", (0.5,), {}), ("CELU", (0.7,), {}), ("SELU", (), {}), ("GELU", (), {}),
        ("GELU", (), {"approximate": "tanh"}), ("SiLU", (), {}), ("Mish", (), {}), ("Tanh", (), {}),
        ("Sigmoid", (), {}), ("Hardtanh", (), {}), ("Hardtanh", (-0.5, 2.0), {}), ("Softplus", (), {}),
        ("Softplus", (2.0, 1.0), {}), ("Softmax", (1,), {}), ("LogSoftmax", (-1,), {}), ("Softmin", (0,), {}),
        ("Hardsigmoid", (), {}), ("Hardswish", (), {}), ("Softsign", (), {}), ("Tanhshrink", (), {}),
        ("LogSigmoid", (), {}), ("Threshold", (0.1, 20.0), {}), ("PReLU", (), {}), ("GLU", (), {}),
        ("GLU", (1,), {}), ("Hardshrink", (), {}), ("Softshrink", (0.3,), {}), ("Softmax2d", (), {})]


@pytest.mark.parametrize("name,args,kw", ACTS, ids=[f"{a[0]}{a[1]}{a[2]}" for a in ACTS])
def test_activation_modules(name, args, kw):
    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, randn(3, 4, 2, scale=3.0))
    check_module(ours, theirs, randn(0, 4, 2), grad=name != "PReLU")


@pytest.mark.parametrize("name,kw", [("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.1}), ("ELU", {}),
                                     ("SiLU", {}), ("Hardtanh", {}), ("ReLU6", {}), ("Mish", {}),
                                     ("SELU", {})])
def test_activation_inplace(name, kw):
    ours, theirs = getattr(nn, name)(inplace=True, **kw), getattr(torch.nn, name)(inplace=True, **kw)
    assert repr(ours) == repr(theirs)
    a = randn(3, 4, scale=3.0)
    xe, xt = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ye, yt = xe * 1.0, xt * 1.0
    re, rt = ours(ye), theirs(yt)
    assert re is ye
    assert_close(ye, yt, msg="in-place result")
    g = randn(3, 4)
    re.backward(engine.tensor(g))
    rt.backward(torch.tensor(g))
    assert_close(xe.grad, xt.grad, 1e-5, 1e-5, "grad")
    with engine.no_grad():           # plain in-place without autograd
        z = engine.tensor(a)
        assert ours(z) is z
        assert_close(z, theirs(torch.tensor(a)))


def test_prelu_channels():
    check_module(nn.PReLU(4), torch.nn.PReLU(4), randn(2, 4, 3))
    check_module(nn.PReLU(4, init=0.1), torch.nn.PReLU(4, init=0.1), randn(5, 4))
    assert repr(nn.PReLU(4)) == repr(torch.nn.PReLU(4))


FUNCS = [("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.3}), ("elu", {"alpha": 2.0}),
         ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}), ("tanh", {}),
         ("sigmoid", {}), ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("softplus", {"beta": 0.5}),
         ("softmax", {"dim": 0}), ("log_softmax", {"dim": 1}), ("softmin", {"dim": -1}), ("selu", {}),
         ("celu", {}), ("logsigmoid", {}), ("hardswish", {}), ("hardsigmoid", {}), ("softsign", {}),
         ("normalize", {}), ("normalize", {"p": 1.0, "dim": 0})]


@pytest.mark.parametrize("name,kw", FUNCS, ids=[f"{a}{b}" for a, b in FUNCS])
def test_functional_activations(name, kw):
    check_functional(getattr(F, name), getattr(torch.nn.functional, name), randn(3, 5, scale=3.0), **kw)
    # non-contiguous (transposed view) inputs
    check_op(lambda T, x: getattr(T.nn.functional, name)(x, **kw), randn(4, 3, scale=3.0), noncontig=True,
             rtol=1e-5, atol=1e-5)


def test_glu_odd_dim_error():
    with pytest.raises(RuntimeError):
        torch.nn.functional.glu(torch.ones(3, 5))
    with pytest.raises(RuntimeError):
        F.glu(engine.ones(3, 5))


def test_embedding_noncontig_index_and_dropout_noncontig_input():
    idx = np.array([[0, 1, 2], [3, 4, 0]], dtype=np.int64)
    w = randn(5, 3)
    ie = engine.tensor(np.ascontiguousarray(idx.T)).t()
    assert not ie.is_contiguous()
    assert_close(F.embedding(ie, engine.tensor(w)), torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(w)))
    x = engine.ones(6, 4).t()
    y = F.dropout(x, 0.5)
    assert y.shape == (4, 6) and set(np.unique(y.numpy()).tolist()) <= {0.0, 2.0}


def test_functional_inplace_variants():
    for name in ("relu_", "leaky_relu_", "elu_", "hardtanh_"):
        a = randn(3, 4)
        xe, xt = engine.tensor(a), torch.tensor(a)
        assert getattr(F, name)(xe) is xe
        getattr(torch.nn.functional, name)(xt)
        assert_close(xe, xt, msg=name)


def test_softmax_implicit_dim_and_dtype():
    a = randn(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(F.softmax(engine.tensor(a)), torch.nn.functional.softmax(torch.tensor(a)), 1e-5, 1e-6)
        assert_close(F.log_softmax(engine.tensor(a[0])), torch.nn.functional.log_softmax(torch.tensor(a[0])),
                     1e-5, 1e-6)
    r = F.softmax(engine.tensor(a), dim=-1, dtype=engine.float64)
    assert r.dtype == engine.float64
    with pytest.warns(UserWarning):
        F.softmax(engine.tensor(a))


def test_gelu_bad_approximate():
    with pytest.raises(RuntimeError):
        F.gelu(engine.zeros(2), approximate="bad")


# ---- dropout -----------------------------------------------------------------------------------
def test_dropout_train_rate_scale_and_grad():
    p = 0.3
    x = engine.ones(200, 100, requires_grad=True)
    y = F.dropout(x, p)
    yn = y.detach().numpy()
    nz = yn[yn != 0]
    np.testing.assert_allclose(nz, 1 / (1 - p), rtol=1e-6)
    rate = (yn == 0).mean()
    assert abs(rate - p) < 0.02
    g = randn(200, 100)
    y.backward(engine.tensor(g))
    mask = (yn != 0).astype(np.float32)
    np.testing.assert_allclose(x.grad.numpy(), g * mask / (1 - p), rtol=1e-6, atol=1e-6)


def test_dropout_module_modes():
    d = nn.Dropout(0.5)
    assert repr(d) == repr(torch.nn.Dropout(0.5))
    x = engine.randn(8, 16)
    d.eval()
    assert d(x) is x
    d.train()
    y = d(x)
    assert y.shape == x.shape and not np.allclose(y.numpy(), x.numpy())
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    z = F.dropout(x, 1.0)
    assert np.all(z.numpy() == 0)
    # different masks on successive calls; same mask for same seed
    engine.manual_seed(3)
    a = F.dropout(engine.ones(64), 0.5).numpy()
    engine.manual_seed(3)
    b = F.dropout(engine.ones(64), 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, F.dropout(engine.ones(64), 0.5).numpy())


def test_dropout_p_one_grad_zero_and_empty():
    x = engine.randn(3, 4, requires_grad=True)
    F.dropout(x, 1.0).sum().backward()
    assert np.all(x.grad.numpy() == 0)
    e = engine.zeros(0, 3)
    assert F.dropout(e, 0.5).shape == (0, 3)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError):
        nn.Dropout(p)
    with pytest.raises(ValueError):
        torch.nn.Dropout(p)
    with pytest.raises(ValueError):
        F.dropout(engine.ones(3), p)


def test_dropout_inplace():
    x = engine.ones(100)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x
    assert set(np.unique(x.numpy()).tolist()) <= {0.0, 2.0}
    a = engine.ones(4, 5, requires_grad=True)
    b = a * 1.0
    nn.Dropout(0.5, inplace=True)(b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.detach().numpy())


def test_dropout_nd_channelwise():
    x = engine.ones(8, 6, 5, 5)
    y = nn.Dropout2d(0.5)(x).numpy()
    assert np.all(y.reshape(8, 6, -1).std(-1) == 0)            # whole channels dropped
    assert set(np.unique(y).tolist()) <= {0.0, 2.0}
    y1 = nn.Dropout1d(0.5)(engine.ones(6, 7)).numpy()          # unbatched (C, L)
    assert np.all(y1.std(-1) == 0)
    y3 = nn.Dropout3d(0.5)(engine.ones(2, 3, 2, 2, 2)).numpy()
    assert np.all(y3.reshape(2, 3, -1).std(-1) == 0)
    with pytest.raises(RuntimeError):
        nn.Dropout1d(0.5)(engine.ones(2, 3, 4, 5))
    assert repr(nn.Dropout2d(0.2, inplace=True)) == repr(torch.nn.Dropout2d(0.2, inplace=True))
    d = nn.Dropout2d()
    d.eval()
    assert d(x) is x


def test_alpha_dropout_stats():
    x = engine.randn(20000)
    y = nn.AlphaDropout(0.2).train()(x).numpy()
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05
    assert nn.AlphaDropout(0.2).eval()(x) is x


# ---- Embedding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("idx_shape", [(5,), (2, 3), (), (0,), (2, 0)])
def test_embedding_matches_torch(idx_shape):
    idx = np.random.default_rng(1).integers(0, 10, size=idx_shape).astype(np.int64)
    check_module(nn.Embedding(10, 3), torch.nn.Embedding(10, 3), idx)


def test_embedding_padding_idx():
    idx = np.array([[0, 2, 2], [4, 1, 2]], dtype=np.int64)
    for pad in (2, -8):
        ours, theirs = nn.Embedding(10, 3, padding_idx=pad), torch.nn.Embedding(10, 3, padding_idx=pad)
        assert ours.padding_idx == theirs.padding_idx
        assert np.all(ours.weight.detach().numpy()[ours.padding_idx] == 0)
        assert repr(ours) == repr(theirs)
        check_module(ours, theirs, idx)
        assert np.all(ours.weight.grad.numpy()[2] == 0)
    with pytest.raises(AssertionError):
        nn.Embedding(10, 3, padding_idx=10)


def test_embedding_scale_grad_by_freq_and_max_norm():
    idx = np.array([[0, 2, 2], [4, 2, 0]], dtype=np.int64)
    check_module(nn.Embedding(6, 3, scale_grad_by_freq=True), torch.nn.Embedding(6, 3, scale_grad_by_freq=True),
                 idx)
    ours, theirs = nn.Embedding(6, 3, max_norm=1.0), torch.nn.Embedding(6, 3, max_norm=1.0)
    theirs.weight.data.mul_(3)
    check_module(ours, theirs, idx)
    assert_close(ours.weight, theirs.weight, 1e-5, 1e-6, "renormed weight")
    assert repr(ours) == repr(theirs)


def test_embedding_default_init_and_errors():
    e = nn.Embedding(1000, 64)
    w = e.weight.detach().numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
    with pytest.raises(IndexError):
        e(engine.tensor([0, 1000]))
    with pytest.raises(IndexError):
        e(engine.tensor([-1]))
    with pytest.raises(RuntimeError):
        e(engine.tensor([0.0, 1.0]))
    assert e(engine.tensor([1, 2], dtype=engine.int32)).shape == (2, 64)


def test_embedding_from_pretrained_and_functional():
    w = randn(5, 3)
    ours = nn.Embedding.from_pretrained(engine.tensor(w))
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(w))
    assert not ours.weight.requires_grad
    idx = np.array([4, 0, 1], dtype=np.int64)
    assert_close(ours(engine.tensor(idx)), theirs(torch.tensor(idx)))
    o2 = nn.Embedding.from_pretrained(engine.tensor(w), freeze=False, padding_idx=1)
    assert o2.weight.requires_grad and o2.padding_idx == 1
    check_op(lambda T, wt: T.nn.functional.embedding(T.tensor(idx) if T is engine else torch.tensor(idx), wt,
                                                     padding_idx=0), w)


def test_one_hot():
    idx = np.array([0, 3, 1], dtype=np.int64)
    assert_close(F.one_hot(engine.tensor(idx), 5), torch.nn.functional.one_hot(torch.tensor(idx), 5))
    assert_close(F.one_hot(engine.tensor(idx)), torch.nn.functional.one_hot(torch.tensor(idx)))


# ---- Flatten / Unflatten -----------------------------------------------------------------------
@pytest.mark.parametrize("args", [(), (0,), (1, 2), (0, -2), (2, 2)])
def test_flatten(args):
    ours, theirs = nn.Flatten(*args), torch.nn.Flatten(*args)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, randn(2, 3, 4, 2))
    check_module(ours, theirs, randn(0, 3, 1, 2))


def test_unflatten():
    ours, theirs = nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, randn(4, 6, 2))
    check_module(nn.Unflatten(-1, (2, -1)), torch.nn.Unflatten(-1, (2, -1)), randn(3, 8))
    with pytest.raises(TypeError):
        nn.Unflatten(1, 6)


def test_small_model_end_to_end():
    def build(tnn):
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(12, 8), tnn.GELU(), tnn.Dropout(0.1), tnn.Linear(8, 3),
                              tnn.LogSoftmax(-1))
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, randn(5, 3, 4), train=False)


# ---- Embedding backward by work-group tables (runtime/embedding.py): small vocabularies ----------
@pytest.mark.parametrize("V,Dm,n,dtype", [(65, 70, (9, 457), np.int64), (7, 3, (2,), np.int32), (200, 16, (3001,), np.int64),
                                         (1, 5, (4, 3), np.int64)])
def test_embedding_table_backward_matches_torch(V, Dm, n, dtype):
    # rows beyond one split and not a multiple of the 4-row unroll; D not a multiple of the column tile
    idx = np.random.default_rng(2).integers(0, V, size=n).astype(dtype)
    check_module(nn.Embedding(V, Dm), torch.nn.Embedding(V, Dm), idx)
    ours = nn.Embedding(V, Dm)
    x = engine.tensor(idx)
    y = ours(x)
    names = kernel_names(lambda: y.sum().backward())[1]
    assert "embedding_backward" in names and not any(k.startswith("index") for k in names), names


def test_embedding_table_backward_big_vocab_float64_and_double_backward():
    from engine.runtime.device import default_device
    idx = np.random.default_rng(3).integers(0, 5000, size=(300,)).astype(np.int64)
    check_module(nn.Embedding(5000, 8), torch.nn.Embedding(5000, 8), idx)    # too big for a table: scatter-add
    if default_device().fp64:
        idx = np.random.default_rng(4).integers(0, 30, size=(40, 3)).astype(np.int64)
        check_module(nn.Embedding(30, 6, dtype=engine.float64), torch.nn.Embedding(30, 6, dtype=torch.float64), idx)
    # create_graph: the backward stays differentiable (the scatter-add path)
    w = engine.randn(12, 4, requires_grad=True)
    tw = torch.tensor(w.detach().numpy(), requires_grad=True)
    i = np.random.default_rng(5).integers(0, 12, size=(50,))
    ge, = engine.autograd.grad((engine.nn.functional.embedding(engine.tensor(i), w) ** 2).sum(), [w], create_graph=True)
    gt, = torch.autograd.grad((torch.nn.functional.embedding(torch.tensor(i), tw) ** 2).sum(), [tw], create_graph=True)
    assert_close(ge, gt, 1e-5, 1e-5)
    (ge ** 2).sum().backward()
    (gt ** 2).sum().backward()
    assert_close(w.grad, tw.grad, 1e-4, 1e-4)
