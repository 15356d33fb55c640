"""The Tensor API: metadata, Python protocols, printing (vs PyTorch's exact str)."""
import copy
import pickle

import numpy as np
import pytest
import torch

import engine
from .helpers import fp64


def tstr(t):
    return str(t).replace("torch.", "engine.")


# ---- printing: the exact PyTorch format --------------------------------------------------------------
PRINT_CASES = [
    "[1., 2.]", "[[1.5, -2.25], [100., 3.]]", "3.5", "0.", "-7", "True", "[1e-5, 1.0]", "[1e10, 1.0]",
    "[0.1, 0.25, 1000.5]", "[[1, 2], [3, -40]]", "[True, False]", "[float('nan'), 1.0, float('inf')]",
    "[float('nan')]", "[float('-inf'), 1.5]", "[0., 0.]", "[-0.5]", "[1., 2000.]", "[1.5, 1e9]", "[123456789.0]",
    "list(range(30))", "[x * 0.1 for x in range(30)]", "[]", "[[]]", "[[], []]", "[1.123456789, -22.5]",
    "np.arange(2000.).reshape(100, 20).tolist()", "np.arange(5000).tolist()", "np.arange(24.).reshape(2, 3, 4).tolist()",
    "np.arange(3000.).reshape(10, 10, 30).tolist()", "(np.arange(12.) / 7).reshape(3, 4).tolist()",
    "[[1e-8, 1.0], [2.0, 3.0]]", "[0.0001, 0.001]", "[2.5e-5]", "[1e8]", "[1e8, 1.0]", "[[True, False], [False, True]]",
    "np.arange(1001).tolist()", "[-1e-3, 5e3]",
]


@pytest.mark.parametrize("data", PRINT_CASES)
def test_str_matches_torch(data):
    d = eval(data)
    assert str(engine.tensor(d)) == tstr(torch.tensor(d))
    assert repr(engine.tensor(d)) == tstr(torch.tensor(d))


@pytest.mark.parametrize("dt", ["int32", "int16", "int8", "uint8"] + (["float64"] if fp64() else []))
def test_str_non_default_dtype_suffix(dt):
    for data in ([1, 2, 3], [[1, 0]], 5, []):
        e = engine.tensor(data, dtype=getattr(engine, dt))
        assert str(e) == tstr(torch.tensor(data, dtype=getattr(torch, dt)))


def test_str_empty_and_sizes():
    for shape, dt in (((0,), "float32"), ((0, 3), "float32"), ((2, 0), "int64"), ((0,), "int64"),
                      ((0,), "bool"), ((1, 0, 2), "int32")):
        e = engine.zeros(shape, dtype=getattr(engine, dt))
        assert str(e) == tstr(torch.zeros(shape, dtype=getattr(torch, dt)))


def test_str_autograd_suffixes():
    a = np.array([1.0, 2.0], dtype=np.float32)
    xe, xt = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for f in (lambda x: x, lambda x: x * 2, lambda x: x.exp(), lambda x: x[0], lambda x: x.view(2, 1),
              lambda x: x.t(), lambda x: x.unsqueeze(0).expand(3, 2), lambda x: x.detach()):
        assert str(f(xe)) == tstr(f(xt))
    big_e = engine.tensor(np.arange(40.0, dtype=np.float32).reshape(4, 10) / 3, requires_grad=True)
    big_t = torch.tensor(np.arange(40.0, dtype=np.float32).reshape(4, 10) / 3, requires_grad=True)
    assert str(big_e) == tstr(big_t)
    assert str(big_e * 1) == tstr(big_t * 1)  # long suffix wraps onto its own line
    assert str(engine.ones(3, requires_grad=True) + 1) == "tensor([2., 2., 2.], grad_fn=<AddBackward0>)"


def test_str_large_tensor_summarised():
    a = np.random.default_rng(0).standard_normal((50, 40)).astype(np.float32)
    s = str(engine.tensor(a))
    assert "..." in s and s == tstr(torch.tensor(a))
    assert str(engine.arange(10000)) == tstr(torch.arange(10000))


def test_set_printoptions():
    try:
        engine.set_printoptions(precision=2)
        torch.set_printoptions(precision=2)
        assert str(engine.tensor([1.23456, 2.5])) == tstr(torch.tensor([1.23456, 2.5]))
        engine.set_printoptions(threshold=5, edgeitems=2)
        torch.set_printoptions(threshold=5, edgeitems=2)
        assert str(engine.arange(10.0)) == tstr(torch.arange(10.0))
        engine.set_printoptions(sci_mode=True)
        torch.set_printoptions(sci_mode=True)
        assert str(engine.tensor([1.5, 2.0])) == tstr(torch.tensor([1.5, 2.0]))
    finally:
        engine.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert str(engine.tensor([1.23456])) == "tensor([1.2346])"


def test_format_and_scalar_protocols():
    x = engine.tensor(3.14159)
    assert f"{x:.2f}" == "3.14" and f"{x}" == str(x)
    assert format(engine.tensor([1.0])) == "tensor([1.])"


# ---- metadata -----------------------------------------------------------------------------------------
def test_metadata_methods_match_torch():
    for T in (engine, torch):
        x = T.zeros(2, 3, 4)
        assert tuple(x.size()) == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
        assert x.stride() == (12, 4, 1) and x.stride(0) == 12 and x.stride(-1) == 1
        assert x.dim() == x.ndim == x.ndimension() == 3
        assert x.numel() == x.nelement() == 24
        assert x.element_size() == 4 and x.itemsize == 4 and x.nbytes == 96
        assert x.is_contiguous() and not x.transpose(0, 1).is_contiguous()
        assert x.storage_offset() == 0 and x[1].storage_offset() == 12
        assert x.is_floating_point() and not x.long().is_floating_point()
        assert not x.is_complex() and not x.is_sparse and x.is_leaf and not x.requires_grad
        assert x.shape[1:] == (3, 4) and len(x) == 2
        assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    with pytest.raises(IndexError):
        engine.zeros(2, 3).size(2)


def test_size_type():
    s = engine.zeros(2, 3).shape
    assert isinstance(s, engine.Size) and isinstance(s, tuple)
    assert s == (2, 3) and s.numel() == 6 and repr(s) == "engine.Size([2, 3])"
    assert isinstance(s[1:], engine.Size) and s[0] == 2
    assert engine.zeros(s).shape == s and engine.zeros(engine.Size([])).shape == ()


def test_len_iter_reversed_contains():
    x = engine.tensor([[1, 2], [3, 4], [5, 6]])
    assert len(x) == 3
    rows = list(x)
    assert [r.tolist() for r in rows] == [[1, 2], [3, 4], [5, 6]]
    assert rows[1].untyped_storage() is x.untyped_storage()
    assert [r.tolist() for r in reversed(x)] == [[5, 6], [3, 4], [1, 2]]
    assert 4 in x and 9 not in x and engine.tensor(3) in x
    s = engine.tensor(1.0)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(s)
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(s)


def test_new_methods_inherit_dtype_and_device():
    x = engine.ones(2, dtype=engine.int32)
    for y in (x.new_zeros(3), x.new_ones(2, 2), x.new_full((2,), 5), x.new_empty(4), x.new_tensor([1, 2])):
        assert y.dtype is engine.int32 and y.device == x.device and not y.requires_grad
    assert x.new_zeros(3, dtype=engine.float32).dtype is engine.float32
    f = engine.ones(2, requires_grad=True)
    assert not f.new_zeros(2).requires_grad and f.new_ones(2, requires_grad=True).requires_grad


def test_data_attribute():
    x = engine.ones(3, requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.untyped_storage() is x.untyped_storage()
    d.mul_(2)  # modifies x without autograd, as in PyTorch
    assert x.tolist() == [2.0, 2.0, 2.0] and x.requires_grad and x.is_leaf
    x.data = engine.zeros(2, 2)
    assert x.shape == (2, 2) and x.requires_grad and x.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_grad_attribute_and_fields():
    x = engine.ones(2, requires_grad=True)
    assert x.grad is None and x.grad_fn is None and x.output_nr == 0
    x.grad = engine.full((2,), 3.0)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.grad is None


def test_pickle_and_deepcopy():
    x = engine.tensor([[1.5, 2.5]], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == x.tolist() and y.requires_grad and y.dtype is x.dtype
    x.grad = engine.ones(1, 2)
    z = copy.deepcopy(x)
    assert z.tolist() == x.tolist() and z.requires_grad and z.is_leaf
    assert z.untyped_storage() is not x.untyped_storage() and z.grad.tolist() == [[1.0, 1.0]]
    i = pickle.loads(pickle.dumps(engine.arange(4)))
    assert i.dtype is engine.int64 and i.tolist() == [0, 1, 2, 3]


def test_legacy_constructor():
    assert engine.Tensor([1, 2]).dtype is engine.float32 and engine.Tensor([1, 2]).tolist() == [1.0, 2.0]
    assert engine.Tensor(2, 3).shape == (2, 3)
    assert engine.Tensor().shape == (0,)
    assert isinstance(engine.ones(1), engine.Tensor) and engine.is_tensor(engine.ones(1))


def test_hash_and_identity():
    a, b = engine.ones(1), engine.ones(1)
    assert len({a, b}) == 2 and hash(a) == hash(a)
    d = {a: 1}
    assert d[a] == 1


def test_numpy_interop():
    x = engine.tensor([1.0, 2.0])
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert (np.ones(2) + x.numpy()).tolist() == [2.0, 3.0]
    r = np.float32(2.0) * x
    assert isinstance(r, engine.Tensor) and r.tolist() == [2.0, 4.0]


def test_element_size_for_all_dtypes():
    for name in ("bool", "uint8", "int8", "int16", "int32", "int64", "float32"):
        e = engine.zeros(1, dtype=getattr(engine, name))
        t = torch.zeros(1, dtype=getattr(torch, name))
        assert e.element_size() == t.element_size()
        assert str(e.dtype) == str(t.dtype).replace("torch", "engine")


def test_size_arithmetic_like_torch():
    for T in (engine, torch):
        s = T.Size([2])
        assert isinstance(s + (3,), T.Size) and tuple(s + (3,)) == (2, 3)
        assert isinstance((3,) + s, T.Size) and tuple((3,) + s) == (3, 2)
        assert isinstance(s * 2, T.Size) and tuple(s * 2) == (2, 2)


def test_resize_like_torch():
    for T in (engine, torch):
        x = T.ones(2, 3)
        y = x.view(6)
        assert x.resize_(2) is x and x.shape == (2,) and x.stride() == (1,)
        x.resize_(10)
        assert x.shape == (10,) and x[:6].tolist() == [1.0] * 6
        x[:6] = 2.0
        assert y.tolist() == [2.0] * 6  # the grown storage is still shared with the view
        t = T.arange(6.0).view(2, 3).t()
        t.resize_(3, 2)
        assert t.stride() == (1, 3)  # same shape: strides kept
        z = T.zeros(3)
        z.resize_as_(T.zeros(2, 2))
        assert z.shape == (2, 2)
        assert T.ones(2).is_same_size(T.zeros(2)) and not T.ones(2).is_same_size(T.ones(3))
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        engine.ones(2, requires_grad=True).resize_(3)


def test_str_huge_tensor_reads_only_edges():
    e = engine.arange(4_000_000, dtype=engine.float32).reshape(2000, 2000) / 7
    t = torch.arange(4_000_000, dtype=torch.float32).reshape(2000, 2000) / 7
    assert str(e) == tstr(t)
    try:
        engine.set_printoptions(edgeitems=0, threshold=3)
        torch.set_printoptions(edgeitems=0, threshold=3)
        assert str(engine.arange(5)) == tstr(torch.arange(5))
    finally:
        engine.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
