"""Property-based checks (hypothesis): random broadcastable shapes, random views."""
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import engine
from .helpers import assert_close, check_op

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def broadcast_pair(draw):
    nd = draw(st.integers(0, 4))
    base = draw(st.lists(st.integers(0, 4), min_size=nd, max_size=nd))
    a = [n if draw(st.booleans()) else 1 for n in base]
    b = [n if draw(st.booleans()) else 1 for n in base]
    drop = draw(st.integers(0, nd))
    return tuple(a), tuple(b[drop:])


@SETTINGS
@given(broadcast_pair(), st.sampled_from(["add", "sub", "mul", "div", "maximum"]), st.booleans())
def test_binary_broadcasting(shapes, op, noncontig):
    sa, sb = shapes
    rng = np.random.default_rng(0)
    a = np.asarray(rng.uniform(0.5, 2, sa).astype(np.float32))
    b = np.asarray(rng.uniform(0.5, 2, sb).astype(np.float32))
    check_op(lambda T, x, y: getattr(T, op)(x, y), a, b, noncontig=noncontig)


@st.composite
def view_chain(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    steps = draw(st.lists(st.sampled_from(["permute", "slice", "unsqueeze", "transpose", "flip_step"]),
                          max_size=4))
    return shape, steps, draw(st.randoms(use_true_random=False))


@SETTINGS
@given(view_chain())
def test_random_view_chains_share_storage_and_match_torch(chain):
    shape, steps, r = chain
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    e, t = engine.tensor(a), torch.tensor(a)
    for s in steps:
        if s == "permute":
            p = list(range(t.ndim))
            r.shuffle(p)
            e, t = e.permute(*p), t.permute(*p)
        elif s == "slice" and t.shape[0] > 1:
            e, t = e[1:], t[1:]
        elif s == "unsqueeze":
            d = r.randint(0, t.ndim)
            e, t = e.unsqueeze(d), t.unsqueeze(d)
        elif s == "transpose" and t.ndim >= 2:
            e, t = e.transpose(0, -1), t.transpose(0, -1)
        elif s == "flip_step" and t.shape[-1] > 1:
            e, t = e[..., ::2], t[..., ::2]
    assert e.stride() == t.stride()
    assert_close(e, t)
    assert_close(e * 2 + 1, t * 2 + 1)
    assert_close(e.reshape(-1), t.reshape(-1))
