"""Creation ops, devices, conversions and type promotion vs PyTorch."""
import numpy as np
import pytest
import torch

import engine
from .helpers import fp64


def dtname(d):
    return str(d).split(".")[-1]


def same(e, t):
    """Same dtype, shape and values (exactly)."""
    assert dtname(e.dtype) == dtname(t.dtype), (e.dtype, t.dtype)
    assert tuple(e.shape) == tuple(t.shape)
    assert e.tolist() == t.tolist()


# ---- tensor(): dtype inference ---------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    1, 1.5, True, -7, [1, 2, 3], [1.0, 2.0], [True, False], [1, 2.5], [True, 2], [[1, 2], [3, 4]],
    [[1.5], [2.5]], [], [[]], [[], []], (1, 2), [[True, False]], [np.float32(1.5), 2.0], [np.float64(1.5)],
    [np.int32(1), np.int32(2)], [np.int16(1), 2], 2 ** 40, [[[1.0]]],
])
def test_tensor_dtype_inference_like_torch(data):
    same(engine.tensor(data), torch.tensor(data))


@pytest.mark.parametrize("dt", [np.float32, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_] +
                         ([np.float64] if fp64() else []))
def test_numpy_keeps_dtype(dt):
    a = (np.arange(6).reshape(2, 3) % 2).astype(dt)
    same(engine.tensor(a), torch.tensor(a))
    same(engine.from_numpy(a), torch.from_numpy(a))
    same(engine.as_tensor(a), torch.as_tensor(a))
    same(engine.tensor(a[:, ::2]), torch.tensor(a[:, ::2]))  # non-contiguous arrays
    same(engine.tensor(a[0, 0]), torch.tensor(a[0, 0]))      # numpy scalars
    same(engine.tensor(np.array(a[0, 0])), torch.tensor(np.array(a[0, 0])))  # 0-d arrays


def test_tensor_zero_dim_and_kwargs():
    t = engine.tensor(3.5)
    assert t.ndim == 0 and t.shape == () and t.item() == 3.5
    same(engine.tensor([1, 2], dtype=engine.float32), torch.tensor([1, 2], dtype=torch.float32))
    same(engine.tensor([1.7, -1.7], dtype=engine.int64), torch.tensor([1.7, -1.7], dtype=torch.int64))
    same(engine.tensor([0, 2], dtype=engine.bool), torch.tensor([0, 2], dtype=torch.bool))
    r = engine.tensor([1.0], requires_grad=True)
    assert r.requires_grad and r.is_leaf
    assert engine.tensor([1.0], dtype=engine.float32, device="cpu").device == engine.device("cpu")
    for d in (engine.float32, "float32", torch.float32, float):
        assert engine.tensor([1], dtype=d).dtype is engine.float32


def test_tensor_from_tensor_copies():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor(x)
    assert not y.requires_grad and y.untyped_storage() is not x.untyped_storage()
    assert y.tolist() == [1.0, 2.0]
    same(engine.tensor([engine.tensor(1.0), engine.tensor(2.0)]), torch.tensor([1.0, 2.0]))
    assert engine.as_tensor(x) is x
    assert engine.as_tensor(x, dtype=engine.int64).dtype is engine.int64


def test_tensor_bad_input():
    with pytest.raises(ValueError, match="expected sequence of length 2 at dim 1 \\(got 1\\)"):
        engine.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        engine.tensor("abc")
    with pytest.raises(TypeError):
        engine.tensor([1, "a"])
    with pytest.raises(TypeError):
        engine.from_numpy([1, 2])
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        engine.tensor([1, 2], requires_grad=True)


# ---- constant creation ------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    "T.zeros(2, 3)", "T.zeros((2, 3))", "T.zeros([2, 3])", "T.zeros(size=(2, 3))", "T.zeros(())", "T.zeros([])",
    "T.zeros(0)", "T.zeros(2, 0, 3)", "T.zeros(2, 3, dtype=T.int32)", "T.zeros(2, dtype=T.bool)",
    "T.ones(T.Size([2, 3]))", "T.ones(3, dtype=T.int64)", "T.ones(2, 2, dtype=T.uint8)", "T.ones(size=[4])",
    "T.full((2,), 3)", "T.full((2,), 3.0)", "T.full((2,), True)", "T.full([2, 2], 1.5, dtype=T.float32)",
    "T.full((2,), 3, dtype=T.float32)", "T.full(size=(2,), fill_value=-1.0)", "T.full((), 4)",
    "T.full((2, 1), 7, dtype=T.int8)",
    "T.eye(3)", "T.eye(2, 3)", "T.eye(3, 2)", "T.eye(3, dtype=T.int64)", "T.eye(0)", "T.eye(1)",
    "T.zeros_like(T.ones(2, dtype=T.int32))", "T.ones_like(T.ones(2, 3))", "T.full_like(T.ones(2), 7)",
    "T.full_like(T.ones(2, dtype=T.int64), 2.7)", "T.zeros_like(T.ones(2, 2), dtype=T.int16)",
    "T.ones_like(T.tensor([True]))", "T.scalar_tensor(3)",
    "T.tensor([1.0, 2.0]).new_zeros(3)", "T.tensor([1, 2]).new_ones((2,))", "T.tensor([1.0]).new_full((2,), 3)",
    "T.tensor([1.0]).new_tensor([1, 2])", "T.tensor([1, 2]).new_tensor([1.5])", "T.tensor([1, 2]).new_zeros(2, 2)",
])
def test_constant_creation_matches_torch(expr):
    same(eval(expr, {"T": engine}), eval(expr, {"T": torch}))


def test_empty_and_like_shapes():
    for e, t in ((engine.empty(2, 3), torch.empty(2, 3)), (engine.empty((4,), dtype=engine.int64),
                                                        torch.empty((4,), dtype=torch.int64)),
                 (engine.empty_like(engine.ones(2, 5)), torch.empty_like(torch.ones(2, 5)))):
        assert tuple(e.shape) == tuple(t.shape) and dtname(e.dtype) == dtname(t.dtype)
    x = engine.zeros(2, requires_grad=True)
    assert x.requires_grad and x.is_leaf
    assert engine.ones_like(engine.ones(2), requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="negative dimension"):
        engine.zeros(-1)
    with pytest.raises(TypeError, match="must be tuple of ints, not float"):
        engine.zeros(2.5)
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        engine.ones(2, dtype=engine.int64, requires_grad=True)


# ---- ranges -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    "T.arange(5)", "T.arange(1, 4)", "T.arange(0, 1, 0.25)", "T.arange(5, 0, -1)", "T.arange(5.0, 0, -1.5)",
    "T.arange(0, 10, 3)", "T.arange(0.5, 3)", "T.arange(3, dtype=T.float32)", "T.arange(1, 1)",
    "T.arange(T.tensor(3))", "T.arange(0, 1, 0.1)", "T.arange(-1.0, 1.0, 0.2)", "T.arange(start=2, end=5)",
    "T.arange(end=3)", "T.arange(10, 0, -3)", "T.arange(-5, -1)", "T.arange(0, 5, 2, dtype=T.float32)",
    "T.linspace(0, 1, 5)", "T.linspace(-1, 1, 1)", "T.linspace(0, 1, 0)", "T.linspace(0, 10, 7)",
    "T.linspace(3, -3, 4)", "T.linspace(0, 1, steps=3)", "T.linspace(0.1, 0.9, 9)", "T.linspace(-10, 10, 101)",
    "T.logspace(0, 2, 3)",
])
def test_ranges_match_torch(expr):
    e, t = eval(expr, {"T": engine}), eval(expr, {"T": torch})
    assert dtname(e.dtype) == dtname(t.dtype) and tuple(e.shape) == tuple(t.shape)
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


def test_linspace_is_exact_like_torch():
    for args in ((0, 10, 7), (0, 1, 11), (-3.3, 7.7, 25)):
        assert engine.linspace(*args).tolist() == torch.linspace(*args).tolist()


def test_large_arange():
    e = engine.arange(100000)
    assert e[-1].item() == 99999 and e.dtype is engine.int64
    f = engine.arange(0, 1000, 0.5)
    assert f.shape == (2000,) and f[-1].item() == 999.5


def test_range_errors():
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
        engine.arange(0, -3, 1)
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        engine.arange(0, 3, 0)
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        engine.linspace(0, 1, -1)


# ---- devices --------------------------------------------------------------------------------------------
def test_device_strings_and_objects():
    d = engine.get_default_device()
    x = engine.zeros(2, device="cl:0")
    assert x.device == engine.device("cl:0") and str(x.device) == "cl:0"
    assert engine.zeros(2, device=engine.device("cl", 0)).device == x.device
    cpu = engine.zeros(2, device="cpu")
    assert cpu.device.type == "cl" and cpu.is_cpu == cpu.device.runtime.is_cpu
    assert repr(engine.device("cl:0")) == "device(type='cl', index=0)"
    assert engine.device("cl:0") == "cl:0" and hash(engine.device("cl:0")) == hash(engine.device(x.device))
    assert isinstance(d, engine.device)
    with pytest.raises(RuntimeError):
        engine.zeros(2, device="cl:99")


def test_cuda_without_gpu_raises_runtime_error():
    if any(dv["type"] == "gpu" for dv in engine.devices()):
        x = engine.zeros(2, device="cuda")
        assert x.is_cuda
        return
    assert not engine.cuda.is_available()
    with pytest.raises(RuntimeError, match="GPU"):
        engine.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="GPU"):
        engine.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match="GPU"):
        engine.ones(2).cuda()


def test_to_device_same_device_is_noop():
    x = engine.ones(2, requires_grad=True)
    assert x.to("cl:0") is x and x.to(x.device) is x and x.cpu() is x if x.is_cpu else True
    assert x.to(engine.float32) is x
    y = x.to(engine.float32, copy=True)
    assert y is not x and y.untyped_storage() is not x.untyped_storage() and y.grad_fn is not None


# ---- conversions -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    "T.tensor([1.0, 2.5]).float()", "T.tensor([1.7, -2.7]).long()", "T.tensor([1.7, 0.0]).bool()",
    "T.tensor([1.7, 0.0]).int()", "T.tensor([300, -1]).byte()", "T.tensor([300, -1]).char()",
    "T.tensor([70000, -1]).short()", "T.tensor([True, False]).float()", "T.tensor([1.5]).to(T.int64)",
    "T.tensor([1]).to(T.tensor([1.0]))", "T.tensor([1.5]).type(T.int32)", "T.tensor([1]).type_as(T.tensor([1.0]))",
    "T.tensor([2.9]).to(dtype=T.int16)", "T.tensor([-0.0, 3.0]).to(T.bool)", "T.tensor([1.5]).to('cpu', T.int64)",
])
def test_conversions_match_torch(expr):
    same(eval(expr, {"T": engine}), eval(expr, {"T": torch}))


def test_cast_autograd():
    x = engine.tensor([1.5, 2.5], requires_grad=True)
    i = x.long()
    assert i.dtype is engine.int64 and not i.requires_grad
    if fp64():
        d = x.double()
        assert d.grad_fn.name() == "ToCopyBackward0"
        (d * 2).sum().backward()
        assert x.grad.dtype is engine.float32 and x.grad.tolist() == [2.0, 2.0]


def test_type_strings():
    assert engine.ones(1).type() == "engine.FloatTensor"
    assert engine.ones(1, dtype=engine.int64).type() == "engine.LongTensor"
    assert engine.ones(1, dtype=engine.bool).type() == "engine.BoolTensor"


def test_host_transfer():
    x = engine.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert engine.tensor(2.5).tolist() == 2.5
    assert x[1, 0].item() == 3.0 and isinstance(x[1, 0].item(), float)
    assert isinstance(engine.tensor(3).item(), int) and isinstance(engine.tensor(True).item(), bool)
    assert engine.tensor([[7]]).item() == 7
    with pytest.raises(RuntimeError, match="a Tensor with 4 elements cannot be converted to Scalar"):
        x.item()
    a = x.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.tolist() == x.tolist()
    a[0, 0] = 100  # numpy() is a host copy: the tensor is unchanged
    assert x[0, 0].item() == 1.0
    assert np.asarray(x.t()).tolist() == [[1.0, 3.0], [2.0, 4.0]]
    r = engine.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad. Use "
                                           "tensor.detach\\(\\).numpy\\(\\) instead."):
        r.numpy()
    assert r.detach().numpy().tolist() == [1.0] and r.numpy(force=True).tolist() == [1.0]
    assert r.tolist() == [1.0] and r.item() == 1.0
    assert float(engine.tensor([2.5])) == 2.5 and int(engine.tensor(3.7)) == 3
    assert bool(engine.tensor([1.0])) and not bool(engine.tensor(0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(engine.tensor([1.0, 2.0]))
    assert [10, 20, 30][engine.tensor(1)] == 20
    with pytest.raises(TypeError):
        [1, 2][engine.tensor(1.0)]


# ---- type promotion ---------------------------------------------------------------------------------------
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float32"] + (["float64"] if fp64() else [])


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("b", DTYPES)
def test_promote_types_all_pairs(a, b):
    e = engine.promote_types(getattr(engine, a), getattr(engine, b))
    t = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert dtname(e) == dtname(t)


def _vals(dt, T):
    return T.tensor([1, 0, 1], dtype=getattr(T, dt))


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("b", DTYPES)
def test_addition_promotion_tensor_pairs(a, b):
    for sa, sb in (((3,), (3,)), ((3,), ()), ((), (3,)), ((), ())):
        res = []
        for T in (engine, torch):
            x = _vals(a, T)[:1].reshape(()) if sa == () else _vals(a, T)
            y = _vals(b, T)[:1].reshape(()) if sb == () else _vals(b, T)
            if a == b == "bool":
                r = x | y
            else:
                r = x + y
            res.append(r)
            assert dtname(T.result_type(x, y)) == dtname(r.dtype)
        same(res[0], res[1])


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 2, -3, 1.5])
def test_addition_promotion_with_python_scalars(a, scalar):
    for shape in ((3,), ()):
        res = []
        for T in (engine, torch):
            x = _vals(a, T) if shape else _vals(a, T)[:1].reshape(())
            if a == "bool" and scalar is True:
                r = x | scalar
            elif a == "uint8" and scalar == -3:
                r = x * 2  # negative Python ints overflow uint8 differently; skip the sum
            else:
                r = x + scalar
            res.append(r)
            assert dtname(T.result_type(x, scalar)) == dtname(torch.result_type(
                torch.tensor(x.tolist(), dtype=getattr(torch, a)), scalar))
        same(res[0], res[1])


def test_result_type_mixed_groups():
    cases = [
        lambda T: (T.ones(2, dtype=T.int32), T.tensor(1.5, dtype=T.float32)),
        lambda T: (T.ones(2, dtype=T.int8), T.tensor(3, dtype=T.int64)),
        lambda T: (T.ones(2, dtype=T.bool), T.tensor(3, dtype=T.int32)),
        lambda T: (T.ones(2, dtype=T.uint8), T.tensor(3, dtype=T.int8), 2.5),
        lambda T: (T.tensor(1, dtype=T.int16), 2.5),
        lambda T: (T.tensor(True), 3),
        lambda T: (T.tensor(1, dtype=T.int8), T.tensor(2, dtype=T.uint8)),
        lambda T: (T.ones(2, dtype=T.float32), T.tensor(1, dtype=T.int64), True),
    ]
    for c in cases:
        e_ops, t_ops = c(engine), c(torch)
        r = engine.result_type(*e_ops[:2]) if len(e_ops) == 2 else engine.result_type(e_ops[0], e_ops[1])
        tr = torch.result_type(*t_ops[:2])
        assert dtname(r) == dtname(tr)
        e_sum, t_sum = e_ops[0] + e_ops[1], t_ops[0] + t_ops[1]
        if len(e_ops) == 3:
            e_sum, t_sum = e_sum + e_ops[2], t_sum + t_ops[2]
        same(e_sum, t_sum)


def test_empty_strided():
    e, t = engine.empty_strided((2, 3), (1, 2)), torch.empty_strided((2, 3), (1, 2))
    assert e.shape == t.shape and e.stride() == t.stride() and not e.is_contiguous()
    e.fill_(2.0)
    assert e.tolist() == [[2.0] * 3] * 2
