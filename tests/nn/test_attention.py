"""scaled_dot_product_attention and MultiheadAttention vs torch (identical weights)."""
import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.helpers import assert_close
from tests.nn.helpers import check_functional, check_module, copy_weights, randn, rng

TF = torch.nn.functional


def _sdpa(**kw):
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw),
            lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kw))


@pytest.mark.parametrize("L,S", [(3, 3), (3, 5), (5, 3)])
def test_sdpa_plain_and_causal(L, S):
    q, k, v = randn(2, 2, L, 4), randn(2, 2, S, 4), randn(2, 2, S, 6)
    for kw in ({}, {"is_causal": True}, {"scale": 0.3}):
        check_functional(*_sdpa(**kw), q, k, v)


def test_sdpa_masks():
    L, S = 3, 5
    q, k, v = randn(2, 2, L, 4), randn(2, 2, S, 4), randn(2, 2, S, 4)
    bmask = rng.random((L, S)) > 0.3
    bmask[:, 0] = True
    fmask = randn(2, 1, L, S)
    for me, mt in ((engine.tensor(bmask), torch.tensor(bmask)), (engine.tensor(fmask), torch.tensor(fmask))):
        check_functional(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=me),
                         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=mt), q, k, v)
    # broadcasting bool mask (N, 1, 1, S) and causal + mask combined (square)
    kp = rng.random((2, 1, 1, S)) > 0.4
    kp[..., 1] = True
    check_functional(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=engine.tensor(kp)),
                     lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=torch.tensor(kp)), q, k, v)
    sq = rng.random((S, S)) > 0.3
    q2 = randn(2, 2, S, 4)
    check_functional(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=engine.tensor(sq),
                                                                    is_causal=True),
                     lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=torch.tensor(sq),
                                                                     is_causal=True), q2, k, v)


def test_sdpa_fully_masked_rows_give_zeros():
    q, k, v = randn(1, 2, 3, 4), randn(1, 2, 3, 4), randn(1, 2, 3, 4)
    m = np.ones((3, 3), bool)
    m[1] = False
    fm = np.zeros((3, 3), np.float32)
    fm[2] = -np.inf
    for mask in (m, fm):
        check_functional(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=engine.tensor(mask)),
                         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=torch.tensor(mask)),
                         q, k, v)


def test_sdpa_3d_gqa_noncontig():
    check_functional(*_sdpa(), randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 4))
    q, k, v = randn(1, 4, 3, 2), randn(1, 2, 3, 2), randn(1, 2, 3, 2)
    check_functional(*_sdpa(enable_gqa=True, is_causal=True), q, k, v)
    qe = engine.tensor(randn(2, 4, 3)).transpose(1, 2).requires_grad_()
    qt = torch.tensor(qe.detach().numpy()).requires_grad_()
    k, v = randn(2, 5, 4), randn(2, 5, 4)
    a = F.scaled_dot_product_attention(qe, engine.tensor(k), engine.tensor(v))
    b = TF.scaled_dot_product_attention(qt, torch.tensor(k), torch.tensor(v))
    assert_close(a, b, 1e-5, 1e-5)
    a.sum().backward()
    b.sum().backward()
    assert_close(qe.grad, qt.grad, 1e-4, 1e-5)


def test_sdpa_dropout_statistics():
    engine.manual_seed(0)
    q = engine.ones(1, 1, 64, 8)
    v = engine.ones(1, 1, 64, 8)
    out = F.scaled_dot_product_attention(q, q, v, dropout_p=0.5)
    m = out.mean().item()
    assert 0.8 < m < 1.2


def _mha_pair(E=8, H=2, **kw):
    ours, theirs = nn.MultiheadAttention(E, H, **kw), torch.nn.MultiheadAttention(E, H, **kw)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)
    copy_weights(ours, theirs)
    return ours, theirs


def _check_mha(ours, theirs, q, k, v, **kw):
    def wrap(m, lib):
        class W:
            def __init__(self):
                self.m = m

            def __call__(self, a, b, c):
                r = self.m(a, b, c, **{n: (lib.tensor(x) if isinstance(x, np.ndarray) else x)
                                       for n, x in kw.items()})
                return r if r[1] is not None else (r[0],)  # assert_close can't compare None

            def named_buffers(self):
                return self.m.named_buffers()

            def named_parameters(self):
                return self.m.named_parameters()

            def train(self, mode):
                self.m.train(mode)
        return W()
    # atol 5e-5: the key part of in_proj_bias.grad is exactly 0 in exact arithmetic (softmax ignores a
    # shift shared by all keys), so both sides return rounding residue of a sum of O(5)-sized terms
    eo, to = check_module(wrap(ours, engine), wrap(theirs, torch), q, k, v, copy=False, rtol=1e-4, atol=5e-5)
    return eo, to


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_basic(batch_first):
    ours, theirs = _mha_pair(batch_first=batch_first)
    shape_q = (2, 3, 8) if batch_first else (3, 2, 8)
    shape_k = (2, 5, 8) if batch_first else (5, 2, 8)
    for nw in (True, False):
        for avg in (True, False):
            eo, to = _check_mha(ours, theirs, randn(*shape_q), randn(*shape_k), randn(*shape_k),
                                need_weights=nw, average_attn_weights=avg)
            assert len(eo) == len(to) == (2 if nw else 1)
    # self-attention with key_padding_mask and attn_mask
    x = randn(*shape_q)
    kpm = np.zeros((2, 3), bool)
    kpm[0, 2] = True
    am = np.triu(np.ones((3, 3), bool), 1)
    for nw in (True, False):
        _check_mha(ours, theirs, x, x, x, key_padding_mask=kpm, attn_mask=am, need_weights=nw)
        _check_mha(ours, theirs, x, x, x, attn_mask=am, is_causal=True, need_weights=nw)
        _check_mha(ours, theirs, x, x, x, key_padding_mask=kpm, need_weights=nw)
    fam = np.where(am, -1e4, 0).astype(np.float32)
    _check_mha(ours, theirs, x, x, x, attn_mask=fam)


def test_mha_3d_mask_unbatched_kdim_nobias():
    ours, theirs = _mha_pair()
    x = randn(3, 2, 8)
    am = rng.random((2 * 2, 3, 3)) > 0.7
    _check_mha(ours, theirs, x, x, x, attn_mask=am)
    _check_mha(ours, theirs, randn(3, 8), randn(4, 8), randn(4, 8))
    _check_mha(ours, theirs, randn(3, 8), randn(4, 8), randn(4, 8), need_weights=False)
    ours, theirs = _mha_pair(E=8, H=4, kdim=6, vdim=5, bias=False)
    assert set(dict(ours.named_parameters())) == set(dict(theirs.named_parameters()))
    _check_mha(ours, theirs, randn(3, 2, 8), randn(4, 2, 6), randn(4, 2, 5))
    ours, theirs = _mha_pair(add_bias_kv=True, add_zero_attn=True)
    _check_mha(ours, theirs, randn(3, 2, 8), randn(4, 2, 8), randn(4, 2, 8))


def test_mha_structure_and_init():
    m = nn.MultiheadAttention(8, 2)
    t = torch.nn.MultiheadAttention(8, 2)
    assert list(m.state_dict()) == list(t.state_dict())
    assert m.in_proj_bias.abs().sum().item() == 0 and m.out_proj.bias.abs().sum().item() == 0
    bound = np.sqrt(6.0 / (8 + 24))
    w = m.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound * 0.8
    assert m.batch_first is False and m.head_dim == 4 and m._qkv_same_embed_dim
    with pytest.raises(AssertionError):
        nn.MultiheadAttention(6, 4)
    m.eval()
    out, w = m(engine.randn(3, 1, 8), engine.randn(3, 1, 8), engine.randn(3, 1, 8))
    assert tuple(out.shape) == (3, 1, 8) and tuple(w.shape) == (1, 3, 3)


def test_mha_dropout_train_eval():
    ours, theirs = _mha_pair(dropout=0.5)
    ours.eval()
    theirs.eval()
    _check_mha(ours, theirs, randn(3, 2, 8), randn(3, 2, 8), randn(3, 2, 8))
    ours.train()
    out, w = ours(*(engine.tensor(randn(3, 2, 8)),) * 3)
    assert tuple(w.shape) == (2, 3, 3)


def test_mha_errors():
    m = nn.MultiheadAttention(8, 2)
    x = engine.randn(3, 2, 8)
    with pytest.raises(RuntimeError):
        m(x, x, x, is_causal=True)
    with pytest.raises(AssertionError):
        m(engine.randn(3, 2, 6), x, x)
    with pytest.raises(RuntimeError):
        m(x, x, x, attn_mask=engine.zeros(4, 4, dtype=engine.bool))


def test_mha_repr():
    assert repr(nn.MultiheadAttention(8, 2)) == repr(torch.nn.MultiheadAttention(8, 2))
