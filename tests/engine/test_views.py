"""Views share storage and copy nothing; shape ops (views and copies) match PyTorch
forward and backward, including non-contiguous inputs, size-1 and empty dims."""
import numpy as np
import pytest
import torch

import engine
from .helpers import TORCH_GRADS_AMINMAX_NARROW_COPY, assert_close, check_op, rand


def shares(a, b):
    return a.untyped_storage() is b.untyped_storage()


def arange_pair(*shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return engine.tensor(a), torch.tensor(a)


# ---- views share storage, strides match torch ------------------------------------------------------
VIEWS = [
    lambda x: x.view(6, 4), lambda x: x.view(-1), lambda x: x.reshape(4, 6), lambda x: x.permute(2, 0, 1),
    lambda x: x.transpose(0, 2), lambda x: x.transpose(-1, -2), lambda x: x.mT, lambda x: x[0].t(),
    lambda x: x[0].T, lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(-1), lambda x: x[:, :1].squeeze(),
    lambda x: x[:, :1].squeeze(1), lambda x: x[:1, :1].squeeze((0, 1)), lambda x: x.flatten(),
    lambda x: x.flatten(1), lambda x: x.unflatten(2, (2, 2)), lambda x: x.narrow(1, 1, 2),
    lambda x: x.select(2, -1), lambda x: x[1], lambda x: x[:, 1:, ::2], lambda x: x[..., 1],
    lambda x: x[None, :, None], lambda x: x[-1, -2:], lambda x: x[:, ::2, 1:3], lambda x: x.expand(3, 2, 3, 4),
    lambda x: x[:, :1].expand(2, 5, 4), lambda x: x.diagonal(0, 1, 2), lambda x: x.diagonal(1, -1, 0),
    lambda x: x.movedim(0, -1), lambda x: x.swapaxes(0, 1), lambda x: x.unbind(1)[2], lambda x: x.split(2, 2)[1],
    lambda x: x.chunk(3, 1)[1], lambda x: x.as_strided((3, 3), (2, 5), 1), lambda x: x.unfold(2, 2, 1),
    lambda x: x.broadcast_to((5, 2, 3, 4)), lambda x: x.view_as(x), lambda x: x.expand_as(x[None]),
    lambda x: x.permute(2, 0, 1)[1:].transpose(0, 1), lambda x: x.t() if x.ndim <= 2 else x.mT[:, 1],
    lambda x: x.ravel(), lambda x: x.contiguous(), lambda x: x.detach(),
]


@pytest.mark.parametrize("k", range(len(VIEWS)))
def test_views_share_storage_and_match_torch(k):
    f = VIEWS[k]
    e, t = arange_pair(2, 3, 4)
    ve, vt = f(e), f(t)
    assert shares(ve, e)
    assert tuple(ve.shape) == tuple(vt.shape)
    assert ve.stride() == vt.stride()
    assert ve.storage_offset() == vt.storage_offset()
    assert ve.is_contiguous() == vt.is_contiguous()
    assert_close(ve, vt)


def test_write_through_view_visible_in_base_and_bumps_version():
    x = engine.zeros(3, 4)
    v0 = x._version
    row = x[1]
    col = x[:, 2]
    row.fill_(1.0)
    assert x._version == row._version == col._version == v0 + 1
    col.copy_(engine.tensor([7.0, 8.0, 9.0]))
    assert x._version == v0 + 2
    x.t()[3, ::2] = 5.0
    assert x._version == v0 + 3
    expect = torch.zeros(3, 4)
    expect[1] = 1.0
    expect[:, 2] = torch.tensor([7.0, 8.0, 9.0])
    expect.t()[3, ::2] = 5.0
    assert_close(x, expect)
    y = x.view(12)
    y[0] = -1.0
    assert x[0, 0].item() == -1.0
    v = x.unsqueeze(0).expand(2, 3, 4)
    assert_close(v[1], torch.tensor(x.numpy()))


def test_inplace_ops_on_views_modify_base():
    x = engine.arange(12.0).reshape(3, 4)
    x[:, 1:3].mul_(10)
    x.diagonal().zero_()
    x.T[0] += 100
    t = torch.arange(12.0).reshape(3, 4)
    t[:, 1:3].mul_(10)
    t.diagonal().zero_()
    t.T[0] += 100
    assert_close(x, t)


def test_setitem_forms():
    e, t = arange_pair(3, 4, 5)
    for x in (e, t):
        x[0] = 1.5
        x[1, 2] = x[2, 1] * 2
        x[..., -1] = 0.0
        x[:, None, 1] = -2.0
        x[2, 1:4:2, ::3] = 9.0
        x[1][3] = 4.0
    assert_close(e, t)
    e2 = engine.zeros(2, 3)
    e2[:] = engine.tensor([1.0, 2.0, 3.0])  # broadcast
    assert e2.tolist() == [[1.0, 2.0, 3.0]] * 2
    e3 = engine.zeros(3, dtype=engine.int64)
    e3[1] = 7
    assert e3.tolist() == [0, 7, 0]
    with pytest.raises(RuntimeError):
        e2[0] = engine.ones(4)


def test_contiguous_copies_only_when_needed():
    x = engine.ones(3, 4)
    assert x.contiguous() is x
    t = x.t()
    c = t.contiguous()
    assert c is not t and not shares(c, x) and c.is_contiguous()
    assert c.stride() == (3, 1)
    assert x[:, :1].squeeze(1).contiguous() is not None
    assert engine.ones(0, 3).t().is_contiguous()


def test_reshape_views_when_possible_copies_otherwise():
    x = engine.arange(24.0).reshape(2, 3, 4)
    assert shares(x.reshape(6, 4), x)
    assert shares(x.reshape(-1), x)
    assert shares(x.permute(1, 0, 2).reshape(3, 2, 4), x)  # still viewable
    r = x.transpose(1, 2).reshape(-1)
    assert not shares(r, x)
    assert_close(r, torch.arange(24.0).reshape(2, 3, 4).transpose(1, 2).reshape(-1))
    assert shares(x[:, :, :1].reshape(2, 3), x)


def test_view_errors_like_torch():
    x = engine.arange(6.0)
    with pytest.raises(RuntimeError, match=r"shape '\[2, 4\]' is invalid for input of size 6"):
        x.view(2, 4)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.view(-1, -1)
    with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
        x.reshape(2, 3).t().view(6)
    with pytest.raises(RuntimeError, match="ambiguous"):
        engine.zeros(2, 0, 3).view(0, -1)
    with pytest.raises(RuntimeError, match=r"shape '\[4, -1\]' is invalid for input of size 6"):
        x.reshape(4, -1)
    assert tuple(engine.zeros(2, 0, 3).view(-1).shape) == (0,)


def test_index_and_dim_errors():
    x = engine.zeros(2, 3)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 1 with size 3"):
        x[0, 5]
    with pytest.raises(IndexError, match="index -3 is out of bounds for dimension 0 with size 2"):
        x[-3]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="invalid index of a 0-dim tensor"):
        engine.tensor(1.0)[0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        x[::0]
    with pytest.raises(IndexError, match="only integers, slices"):
        x[1.5]
    for f in (lambda: x.transpose(0, 2), lambda: x.squeeze(3), lambda: x.unsqueeze(3), lambda: x.sum(2) if False
              else x.select(2, 0), lambda: x.narrow(-3, 0, 1), lambda: x.size(2), lambda: x.flatten(0, 2),
              lambda: x.movedim(0, 5), lambda: x.diagonal(0, 0, 2), lambda: engine.cat([x, x], 2),
              lambda: engine.stack([x, x], 3), lambda: x.unbind(2), lambda: x.split(1, 2), lambda: x.roll(1, 2)):
        with pytest.raises(IndexError, match="Dimension out of range"):
            f()
    with pytest.raises(IndexError, match="select\\(\\): index 3 out of range"):
        x.select(1, 3)
    with pytest.raises(IndexError, match="start out of range"):
        x.narrow(1, 4, 0)
    with pytest.raises(RuntimeError, match=r"start \(2\) \+ length \(2\) exceeds dimension size \(3\)"):
        x.narrow(1, 2, 2)


def test_shape_op_errors_name_shapes():
    a, b = engine.ones(2, 3), engine.ones(2, 4)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0. Expected size 3 "
                                           "but got size 4 for tensor number 1"):
        engine.cat([a, b])
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 1"):
        engine.cat([a, engine.ones(2)])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        engine.cat([engine.tensor(1.0), engine.tensor(2.0)])
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        engine.cat([])
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got \[2, 3\] at entry 0 "
                                           r"and \[2, 4\] at entry 1"):
        engine.stack([a, b])
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        engine.stack([])
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(3\) must match the existing size "
                                           r"\(2\) at non-singleton dimension 0.  Target sizes: \[3, 3\].  Tensor "
                                           r"sizes: \[2, 3\]"):
        a.expand(3, 3)
    with pytest.raises(RuntimeError, match="must be greater or equal to the number of dimensions"):
        a.expand(3)
    with pytest.raises(RuntimeError, match="isn't allowed in a leading, non-existing dimension"):
        a.expand(-1, 2, 3)
    with pytest.raises(RuntimeError, match="number of dimensions in the tensor input does not match"):
        a.permute(0)
    with pytest.raises(RuntimeError, match="duplicate dims are not allowed"):
        a.permute(0, 0)
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 2"):
        a.split([1, 2])
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions"):
        engine.ones(2, 2, 2).t()
    with pytest.raises(RuntimeError, match="tensor.mT is only supported on matrices"):
        engine.ones(3).mT
    with pytest.raises(RuntimeError, match="unflatten: Provided sizes \\[2, 2\\] don't multiply up"):
        a.unflatten(1, (2, 2))
    with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
        a.flatten(1, 0)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        a.roll((1, 2), 0)
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims can not be smaller"):
        a.repeat(2)
    with pytest.raises(RuntimeError, match="repeated dim"):
        a.movedim((0, 0), (1, 0))


def test_zero_dim_and_empty_views():
    s = engine.tensor(3.0)
    assert tuple(s.unsqueeze(0).shape) == (1,) and tuple(s.flatten().shape) == (1,)
    assert tuple(s.reshape(1, 1).shape) == (1, 1) and tuple(s.squeeze(0).shape) == ()
    assert tuple(s.t().shape) == () and tuple(s.T.shape) == () and tuple(s[None, None].shape) == (1, 1)
    assert s[...].item() == 3.0 and tuple(s.view(-1).shape) == (1,)
    z = engine.zeros(0, 3)
    assert tuple(z.t().shape) == (3, 0) and tuple(z.reshape(3, 0, 1).shape) == (3, 0, 1)
    assert tuple(z[1:].shape) == (0, 3) and tuple(z[:, 1].shape) == (0,)
    assert [tuple(c.shape) for c in engine.zeros(0).chunk(3)] == [(0,)] * 3
    assert tuple(z.expand(2, 0, 3).shape) == (2, 0, 3)
    assert engine.zeros(2, 3)[2:].numel() == 0


# ---- shape-op autograd vs torch ---------------------------------------------------------------------
A = rand((3, 4))
B = rand((2, 3, 4))
ONE = rand((3, 1))
EMPTY = rand((0, 4))

SHAPE_OPS = [
    ("view", lambda T, x: x.view(4, 3), A), ("view_neg", lambda T, x: x.view(-1, 2), A),
    ("reshape_copy", lambda T, x: x.t().reshape(12), A), ("reshape", lambda T, x: x.reshape(2, 2, 3), A),
    ("permute", lambda T, x: x.permute(2, 0, 1), B), ("transpose", lambda T, x: x.transpose(0, 2), B),
    ("t", lambda T, x: x.t(), A), ("T", lambda T, x: x.T, A), ("mT", lambda T, x: x.mT, B),
    ("unsqueeze", lambda T, x: x.unsqueeze(1), A), ("squeeze", lambda T, x: x.squeeze(), ONE),
    ("squeeze_dim", lambda T, x: x.squeeze(1), ONE), ("squeeze_noop", lambda T, x: x.squeeze(0), ONE),
    ("squeeze_tuple", lambda T, x: x.unsqueeze(0).squeeze((0, 2)), ONE),
    ("flatten", lambda T, x: x.flatten(), B), ("flatten_1", lambda T, x: x.flatten(1), B),
    ("unflatten", lambda T, x: x.unflatten(1, (2, 2)), A), ("narrow", lambda T, x: x.narrow(1, 1, 2), A),
    ("select", lambda T, x: x.select(0, -1), B), ("slice_step", lambda T, x: x[::2, 1::2], A),
    ("index_mix", lambda T, x: x[1, None, ..., ::3], B), ("ellipsis", lambda T, x: x[..., 1:], B),
    ("neg_index", lambda T, x: x[-1, -2], B),
    ("expand", lambda T, x: x.expand(2, 3, 4), ONE), ("expand_new", lambda T, x: x.expand(5, 3, 4), A),
    ("expand_as", lambda T, x: x.expand_as(T.zeros(2, 3, 4)), A),
    ("broadcast_to", lambda T, x: T.broadcast_to(x, (2, 3, 5)), ONE),
    ("broadcast_tensors", lambda T, x: T.broadcast_tensors(x, T.zeros(2, 1, 4))[0], ONE),
    ("diagonal", lambda T, x: x.diagonal(), A), ("diagonal_off", lambda T, x: x.diagonal(1), A),
    ("diagonal_neg", lambda T, x: x.diagonal(-1, 1, 0), A), ("diagonal_3d", lambda T, x: x.diagonal(0, 1, 2), B),
    ("movedim", lambda T, x: x.movedim(0, 2), B), ("movedim_multi", lambda T, x: T.movedim(x, (0, 1), (2, 0)), B),
    ("swapaxes", lambda T, x: x.swapaxes(0, 1), A),
    ("cat0", lambda T, x: T.cat([x, x * 2, x[:1]], 0), A), ("cat1", lambda T, x: T.cat([x, x[:, :1]], 1), A),
    ("cat_neg", lambda T, x: T.cat([x, x], -1), B), ("cat_empty", lambda T, x: T.cat([x, T.zeros(0)], 0), A),
    ("concat", lambda T, x: T.concat([x, x], 1), A),
    ("stack", lambda T, x: T.stack([x, x * 3], 1), A), ("stack_last", lambda T, x: T.stack([x, x], -1), A),
    ("hstack", lambda T, x: T.hstack([x, x]), A), ("vstack", lambda T, x: T.vstack([x, x]), A),
    ("split", lambda T, x: x.split(2, 1), A), ("split_sizes", lambda T, x: x.split([1, 3], 1), A),
    ("split_partial_use", lambda T, x: x.split(1, 0)[1] * 2, A),
    ("chunk", lambda T, x: x.chunk(3, 1), A), ("chunk_uneven", lambda T, x: x.chunk(2, 0), A),
    ("unbind", lambda T, x: x.unbind(1), A), ("unbind_some", lambda T, x: x.unbind(0)[2] * 3, A),
    ("repeat", lambda T, x: x.repeat(2, 3), A), ("repeat_new_dims", lambda T, x: x.repeat(2, 1, 2), ONE),
    ("repeat_zero", lambda T, x: x.repeat(0, 2), A), ("tile", lambda T, x: x.tile((2,)), A),
    ("tile_more", lambda T, x: T.tile(x, (2, 1, 1)), A),
    ("flip", lambda T, x: x.flip(0), A), ("flip_multi", lambda T, x: T.flip(x, (0, 2)), B),
    ("fliplr", lambda T, x: T.fliplr(x), A), ("flipud", lambda T, x: T.flipud(x), A),
    ("roll", lambda T, x: x.roll(1, 0), A), ("roll_neg", lambda T, x: x.roll(-3, 1), A),
    ("roll_multi", lambda T, x: x.roll((1, 2), (0, 2)), B), ("roll_flat", lambda T, x: x.roll(5), A),
    ("clone", lambda T, x: x.clone(), A), ("contiguous", lambda T, x: x.t().contiguous(), A),
    ("as_strided", lambda T, x: x.as_strided((2, 2), (4, 1), 1), A),
    ("as_strided_overlap", lambda T, x: x.as_strided((3, 3), (1, 1)), A),
    ("as_strided_expand", lambda T, x: x.as_strided((2, 3), (0, 1)), A),
    ("unfold", lambda T, x: x.unfold(1, 2, 1), A), ("unfold_step", lambda T, x: x.unfold(0, 2, 2), B),
    ("diag", lambda T, x: T.diag(x[0]), A), ("diag_off", lambda T, x: T.diag(x[0], -1), A),
    ("diag_2d", lambda T, x: T.diag(x, 1), A), ("diag_embed", lambda T, x: T.diag_embed(x), A),
    ("diag_embed_dims", lambda T, x: T.diag_embed(x, 1, 0, 2), A),
    ("atleast_3d", lambda T, x: T.atleast_3d(x), A), ("column_stack", lambda T, x: T.column_stack([x[0], x[1]]), A),
    ("dstack", lambda T, x: T.dstack([x, x]), A), ("ravel", lambda T, x: x.t().ravel(), A),
    ("narrow_copy", lambda T, x: x.narrow_copy(0, 1, 2), A),
    ("tensor_split", lambda T, x: T.tensor_split(x, 3, 1), A),
    ("tensor_split_idx", lambda T, x: T.tensor_split(x, [1, 3], 1), A),
    ("select_scatter", lambda T, x: T.select_scatter(x, x[0] * 2, 0, 1), A),
    ("slice_scatter", lambda T, x: T.slice_scatter(x, x[:, :2] * 2, 1, 1, 4, 2), A),
    ("diagonal_scatter", lambda T, x: T.diagonal_scatter(x, x[0, :3] * 2, 0), A),
    ("empty_view", lambda T, x: x.view(2, 0, 2).transpose(0, 2), EMPTY),
    ("empty_cat", lambda T, x: T.cat([x, x], 0), EMPTY), ("empty_stack", lambda T, x: T.stack([x, x]), EMPTY),
    ("empty_expand", lambda T, x: x.unsqueeze(0).expand(3, 0, 4), EMPTY),
    ("empty_flip_roll", lambda T, x: x.flip(1).roll(1, 1), EMPTY),
    ("empty_split", lambda T, x: x.split(2, 1), EMPTY),
    ("chain", lambda T, x: x.t().unsqueeze(0).expand(2, 4, 3)[:, 1:].flip(2).reshape(2, -1).roll(1, 1), A),
]


@pytest.mark.parametrize("name,fn,a", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_op_forward_backward(name, fn, a):
    check_op(fn, a, grad=name != "narrow_copy" or TORCH_GRADS_AMINMAX_NARROW_COPY)


# ops whose result depends on the input's strides (view needs viewable strides, as_strided reads raw memory)
STRIDE_SENSITIVE = {"view", "view_neg", "as_strided", "as_strided_overlap", "as_strided_expand"}
NONCONTIG = [s for s in SHAPE_OPS if s[2].ndim >= 2 and s[2].size and s[0] not in STRIDE_SENSITIVE]


@pytest.mark.parametrize("name,fn,a", NONCONTIG, ids=[s[0] for s in NONCONTIG])
def test_shape_op_noncontiguous_input(name, fn, a):
    check_op(fn, a, noncontig=True, grad=name != "narrow_copy" or TORCH_GRADS_AMINMAX_NARROW_COPY)


def test_same_tensor_through_several_views():
    check_op(lambda T, x: x[0] * x[:, 0][:4] + x.t()[1][:4] + x.diagonal().sum(), rand((4, 4)))


def test_stack_cat_promote_dtypes_and_cast_gradients():
    a = rand((2, 3))
    i = np.arange(6).reshape(2, 3)
    check_op(lambda T, x, k: T.cat([x, k], 0), a, i)
    check_op(lambda T, x, k: T.stack([k, x], 0), a, i)
    r = engine.cat([engine.ones(2, dtype=engine.int32), engine.ones(2, dtype=engine.int64)])
    assert r.dtype is engine.int64


def test_split_outputs_are_views_and_writable():
    x = engine.arange(6.0)
    a, b = x.split(3)
    b.fill_(0.0)
    assert x.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0, 0.0]
    assert all(shares(u, x) for u in x.unbind(0))


def test_flip_roll_repeat_copy():
    x = engine.arange(6.0).reshape(2, 3)
    for r in (x.flip(0), x.roll(1, 1), x.repeat(1, 1), x.tile((1,)), x.clone()):
        assert not shares(r, x) and r.is_contiguous()


def test_as_strided_matches_torch_strides():
    e, t = arange_pair(4, 4)
    for args in (((2, 2), (1, 2)), ((3,), (5,), 1), ((2, 2, 2), (8, 4, 1))):
        ve, vt = e.as_strided(*args), t.as_strided(*args)
        assert ve.stride() == vt.stride() and ve.storage_offset() == vt.storage_offset()
        assert_close(ve, vt)


def test_view_dtype_reinterprets():
    x = engine.tensor([1.0, -2.0])
    v = x.view(engine.int32)
    assert v.dtype is engine.int32 and shares(v, x)
    assert v.tolist() == torch.tensor([1.0, -2.0]).view(torch.int32).tolist()
    with pytest.raises(RuntimeError):
        x.view(engine.int64)


def test_inplace_view_methods():
    x = engine.zeros(2, 3)
    x.transpose_(0, 1)  # (t_ is rebound by ops/methods.py)
    assert tuple(x.shape) == (3, 2) and x.stride() == (1, 3)
    x.unsqueeze_(0)
    assert tuple(x.shape) == (1, 3, 2)
    x.squeeze_()
    assert tuple(x.shape) == (3, 2)
    x.transpose_(0, 1)
    assert tuple(x.shape) == (2, 3) and x.is_contiguous()


def test_copy_between_overlapping_views():
    # PyTorch refuses partially overlapping copies; clgrad reads the source first (no kernel
    # races), with NumPy's result
    x = engine.arange(8.0)
    x[1:].copy_(x[:-1])
    y = engine.arange(8.0)
    y[:-2] = y[2:]
    z = engine.arange(9.0).reshape(3, 3)
    z.copy_(z.t())
    w = engine.arange(8.0)
    w[::2].copy_(w[1::2])
    a, b, c, d = np.arange(8.0), np.arange(8.0), np.arange(9.0).reshape(3, 3), np.arange(8.0)
    a[1:] = a[:-1].copy()
    b[:-2] = b[2:].copy()
    c[...] = c.T.copy()
    d[::2] = d[1::2]
    for e, n in ((x, a), (y, b), (z, c), (w, d)):
        assert e.tolist() == n.tolist()


def test_broadcast_shapes():
    for args in (((2, 1), (3,)), ((1,), ()), (3, (2, 1)), ((0, 1), (1, 4))):
        assert tuple(engine.broadcast_shapes(*args)) == tuple(torch.broadcast_shapes(*args))
    assert isinstance(engine.broadcast_shapes((2,), (2,)), engine.Size)
    with pytest.raises(RuntimeError):
        engine.broadcast_shapes((2,), (3,))
