"""Transformer modules vs torch (identical weights copied in): forward, input grads, parameter grads."""
import copy
import math
import warnings

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.nn.helpers import TORCH_NORM_BIAS, check_module, randn, rng

TNN = torch.nn
TF = torch.nn.functional

D, H, FF, S, T, N = 16, 2, 24, 5, 4, 3
TOL = dict(rtol=2e-4, atol=5e-5)
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask and attn_mask")


class _Call:
    """Adapter for check_module: calls `mod(*inputs, **kw)` and delegates the state methods."""

    def __init__(self, mod, kw):
        self.mod, self.kw = mod, kw

    def __call__(self, *a):
        return self.mod(*a, **self.kw)

    def __getattr__(self, name):  # named_parameters, named_buffers, load_state_dict, state_dict, train
        return getattr(self.mod, name)


def _kw(kw_np):
    """numpy / python kwargs -> (engine kwargs, torch kwargs)."""
    ek, tk = {}, {}
    for k, v in kw_np.items():
        if isinstance(v, np.ndarray):
            ek[k], tk[k] = engine.tensor(v), torch.tensor(v)
        else:
            ek[k] = tk[k] = v
    return ek, tk


def _check(ours, theirs, *inputs, train=False, **kw_np):
    ek, tk = _kw(kw_np)
    return check_module(_Call(ours, ek), _Call(theirs, tk), *inputs, train=train, **TOL)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _causal(n):
    return np.triu(np.full((n, n), -np.inf, np.float32), 1)


def _kpm(n, s, p=0.4):
    """bool key padding mask (True = padded), at least one real key per row."""
    m = rng.random((n, s)) < p
    m[:, 0] = False
    return m


def _seq(batch_first, L, n=N):
    return randn(n, L, D) if batch_first else randn(L, n, D)


# ------------------------------------------------------------------ encoder layer

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("train", [False, True])
def test_encoder_layer(batch_first, norm_first, activation, train):
    kw = dict(dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    ours, theirs = nn.TransformerEncoderLayer(D, H, **kw), TNN.TransformerEncoderLayer(D, H, **kw)
    _check(ours, theirs, _seq(batch_first, S), train=train)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_masks(batch_first, norm_first):
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    ours, theirs = nn.TransformerEncoderLayer(D, H, **kw), TNN.TransformerEncoderLayer(D, H, **kw)
    x = _seq(batch_first, S)
    causal = nn.Transformer.generate_square_subsequent_mask(S).numpy()
    np.testing.assert_array_equal(causal, TNN.Transformer.generate_square_subsequent_mask(S).numpy())
    kpm = _kpm(N, S)
    _check(ours, theirs, x, src_mask=causal)
    _check(ours, theirs, x, src_mask=causal, is_causal=True)
    _check(ours, theirs, x, src_key_padding_mask=kpm)
    _check(ours, theirs, x, src_mask=causal, src_key_padding_mask=np.where(kpm, -np.inf, 0).astype(np.float32))
    bool_mask = rng.random((S, S)) < 0.3
    np.fill_diagonal(bool_mask, False)
    _check(ours, theirs, x, src_mask=bool_mask, src_key_padding_mask=kpm)
    _check(ours, theirs, x, src_mask=randn(S, S))


def test_encoder_layer_unbatched_and_3d_mask():
    kw = dict(dim_feedforward=FF, dropout=0.0)
    ours, theirs = nn.TransformerEncoderLayer(D, H, **kw), TNN.TransformerEncoderLayer(D, H, **kw)
    _check(ours, theirs, randn(S, D), src_mask=_causal(S))
    _check(ours, theirs, randn(S, N, D), src_mask=randn(N * H, S, S))


def test_encoder_layer_callable_activation_and_no_bias():
    for eact, tact in ((F.silu, TF.silu), (nn.GELU(), TNN.GELU()), (F.gelu, TF.gelu)):
        ours = nn.TransformerEncoderLayer(D, H, FF, 0.0, eact, bias=False)
        theirs = TNN.TransformerEncoderLayer(D, H, FF, 0.0, tact, bias=False)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert ours.activation_relu_or_gelu == theirs.activation_relu_or_gelu
        assert repr(ours) == repr(theirs) or not TORCH_NORM_BIAS
        _check(ours, theirs, randn(S, N, D))


# ------------------------------------------------------------------ decoder layer

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("train", [False, True])
def test_decoder_layer(batch_first, norm_first, activation, train):
    kw = dict(dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    ours, theirs = nn.TransformerDecoderLayer(D, H, **kw), TNN.TransformerDecoderLayer(D, H, **kw)
    _check(ours, theirs, _seq(batch_first, T), _seq(batch_first, S), train=train)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_masks(batch_first, norm_first):
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    ours, theirs = nn.TransformerDecoderLayer(D, H, **kw), TNN.TransformerDecoderLayer(D, H, **kw)
    tgt, mem = _seq(batch_first, T), _seq(batch_first, S)
    _check(ours, theirs, tgt, mem, tgt_mask=_causal(T), tgt_is_causal=True)
    _check(ours, theirs, tgt, mem, tgt_mask=_causal(T), tgt_key_padding_mask=_kpm(N, T),
           memory_key_padding_mask=_kpm(N, S))
    _check(ours, theirs, tgt, mem, tgt_mask=_causal(T), memory_mask=randn(T, S),
           memory_key_padding_mask=_kpm(N, S))


def test_decoder_layer_unbatched():
    ours, theirs = nn.TransformerDecoderLayer(D, H, FF, 0.0), TNN.TransformerDecoderLayer(D, H, FF, 0.0)
    _check(ours, theirs, randn(T, D), randn(S, D), tgt_mask=_causal(T))


# ------------------------------------------------------------------ stacks

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_encoder_stack(batch_first, norm_first, train):
    kw = dict(dim_feedforward=FF, dropout=0.0, activation="gelu", batch_first=batch_first, norm_first=norm_first)
    ours = _quiet(nn.TransformerEncoder, nn.TransformerEncoderLayer(D, H, **kw), 2, nn.LayerNorm(D))
    theirs = _quiet(TNN.TransformerEncoder, TNN.TransformerEncoderLayer(D, H, **kw), 2, TNN.LayerNorm(D))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.use_nested_tensor == theirs.use_nested_tensor
    x = _seq(batch_first, S)
    _check(ours, theirs, x, train=train)
    _check(ours, theirs, x, mask=_causal(S), src_key_padding_mask=np.where(_kpm(N, S), -np.inf, 0)
           .astype(np.float32), train=train)
    # causal detected from the mask (is_causal=None), and given explicitly
    _check(ours, theirs, x, mask=_causal(S), train=train)
    _check(ours, theirs, x, mask=_causal(S), is_causal=True, train=train)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_decoder_stack(batch_first, norm_first, train):
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    ours = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, **kw), 2, nn.LayerNorm(D))
    theirs = TNN.TransformerDecoder(TNN.TransformerDecoderLayer(D, H, **kw), 2, TNN.LayerNorm(D))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    tgt, mem = _seq(batch_first, T), _seq(batch_first, S)
    _check(ours, theirs, tgt, mem, train=train)
    _check(ours, theirs, tgt, mem, tgt_mask=_causal(T), tgt_key_padding_mask=_kpm(N, T),
           memory_key_padding_mask=_kpm(N, S), train=train)
    # a bool causal mask is detected as causal too (tgt_is_causal=None)
    _check(ours, theirs, tgt, mem, tgt_mask=np.triu(np.ones((T, T), bool), 1), train=train)


def test_stack_without_norm_and_clones_are_independent():
    layer = nn.TransformerEncoderLayer(D, H, FF, 0.0)
    enc = _quiet(nn.TransformerEncoder, layer, 2)
    assert enc.norm is None and enc.num_layers == 2 and len(enc.layers) == 2
    p0, p1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert p0 is not p1 and p0 is not layer.linear1.weight
    np.testing.assert_array_equal(p0.detach().numpy(), p1.detach().numpy())  # deep copies of one layer start equal
    theirs = _quiet(TNN.TransformerEncoder, TNN.TransformerEncoderLayer(D, H, FF, 0.0), 2)
    _check(enc, theirs, randn(S, N, D))
    assert enc.layers[0].linear1.weight.grad is not None and enc.layers[1].linear1.weight.grad is not None


# ------------------------------------------------------------------ full model

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer(batch_first, norm_first):
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
              batch_first=batch_first, norm_first=norm_first)
    ours, theirs = _quiet(nn.Transformer, **kw), _quiet(TNN.Transformer, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    src, tgt = _seq(batch_first, S), _seq(batch_first, T)
    _check(ours, theirs, src, tgt)
    _check(ours, theirs, src, tgt, tgt_mask=_causal(T), src_key_padding_mask=_kpm(N, S),
           tgt_key_padding_mask=_kpm(N, T), memory_key_padding_mask=_kpm(N, S), train=True)
    _check(ours, theirs, src, tgt, src_mask=_causal(S), tgt_mask=_causal(T), memory_mask=randn(T, S),
           src_is_causal=True, tgt_is_causal=True)


def test_transformer_unbatched_and_gelu():
    kw = dict(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF, dropout=0.0,
              activation="gelu")
    ours, theirs = _quiet(nn.Transformer, **kw), _quiet(TNN.Transformer, **kw)
    _check(ours, theirs, randn(S, D), randn(T, D), tgt_mask=_causal(T))


def test_transformer_init_and_attributes():
    m = _quiet(nn.Transformer, D, H, 2, 1, FF)
    assert (m.d_model, m.nhead, m.batch_first) == (D, H, False)
    for name, p in m.named_parameters():
        if p.dim() > 1:  # xavier_uniform_ on every matrix
            fan_out, fan_in = p.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            a = p.detach().numpy()
            assert np.abs(a).max() <= bound + 1e-6, name
            assert a.std() > bound / 3, name  # roughly uniform over the whole range, not the Linear default
        elif name.endswith("in_proj_bias") or name.endswith("out_proj.bias"):
            assert np.all(p.detach().numpy() == 0), name
        elif ".norm" in name or name.startswith("encoder.norm") or name.startswith("decoder.norm"):
            expect = 1.0 if name.endswith("weight") else 0.0
            assert np.all(p.detach().numpy() == expect), name
    assert isinstance(m.encoder, nn.TransformerEncoder) and isinstance(m.decoder, nn.TransformerDecoder)
    assert len(m.encoder.layers) == 2 and len(m.decoder.layers) == 1


def test_state_dict_keys_load_and_repr():
    kw = dict(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF)
    ours, theirs = _quiet(nn.Transformer, **kw), _quiet(TNN.Transformer, **kw)
    sd_t = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd_t)
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(sd_t[k].shape), k
    ours.load_state_dict({k: engine.tensor(v.numpy()) for k, v in sd_t.items()})
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd_t[k].numpy())
    assert repr(ours) == repr(theirs) or not TORCH_NORM_BIAS  # one layer each: torch's ModuleList repr compresses repeated layers
    for ctor in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        a = getattr(nn, ctor)(D, H, FF, 0.2, "gelu", 1e-6, True, True, False)
        b = getattr(TNN, ctor)(D, H, FF, 0.2, "gelu", 1e-6, True, True, False)
        assert repr(a) == repr(b) or not TORCH_NORM_BIAS
        assert list(a.state_dict()) == list(b.state_dict())
        assert a.norm1.eps == 1e-6 and a.norm_first and a.self_attn.batch_first and a.linear1.bias is None


@pytest.mark.skipif(not TORCH_NORM_BIAS, reason="this torch's norm reprs have no 'bias='")
def test_repr_of_stacks():
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF)
    assert repr(_quiet(nn.Transformer, **kw)) == repr(_quiet(TNN.Transformer, **kw))


def test_custom_encoder_decoder():
    enc = _quiet(nn.TransformerEncoder, nn.TransformerEncoderLayer(D, H, FF, 0.0), 1)
    m = nn.Transformer(D, H, dim_feedforward=FF, num_decoder_layers=1, custom_encoder=enc)
    assert m.encoder is enc
    assert list(m.state_dict())[0].startswith("encoder.layers.0.")


def test_errors_and_warnings():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D, H, activation="tanh")
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerDecoderLayer(D, H, activation="tanh")
    m = _quiet(nn.Transformer, D, H, 1, 1, FF)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        m(engine.tensor(randn(S, 2, D)), engine.tensor(randn(T, 3, D)))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        m(engine.tensor(randn(S, 2, D)), engine.tensor(randn(T, 2, D + 2)))
    with pytest.warns(UserWarning, match="enable_nested_tensor is True, but self.use_nested_tensor is False "
                                         "because encoder_layer.norm_first was True"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF, batch_first=True, norm_first=True), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF, batch_first=True), 1)
    assert enc.use_nested_tensor
    layer = nn.TransformerEncoderLayer(D, H, FF, 0.0)
    x = engine.tensor(randn(S, N, D))
    with pytest.warns(UserWarning, match="Support for mismatched src_key_padding_mask and src_mask"):
        layer(x, src_mask=engine.tensor(_causal(S)), src_key_padding_mask=engine.tensor(_kpm(N, S)))
    with pytest.raises(AssertionError, match="only bool and floating types of src_mask are supported"):
        layer(x, src_mask=engine.tensor(np.zeros((S, S), np.int64)))


def test_dropout_train_vs_eval():
    m = nn.TransformerEncoderLayer(D, H, FF, dropout=0.5)
    x = engine.tensor(randn(S, N, D))
    m.eval()
    a, b = m(x).detach().numpy(), m(x).detach().numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    c = m(x).detach().numpy()
    assert c.shape == a.shape and not np.allclose(a, c)


def test_detect_is_causal_mask():
    from engine.nn.modules.transformer import _detect_is_causal_mask as ours
    from torch.nn.modules.transformer import _detect_is_causal_mask as theirs
    cases = [_causal(S), np.triu(np.ones((S, S), bool), 1), np.triu(np.ones((S, S), bool), 2), randn(S, S),
             _causal(S)[None], np.zeros((S, S), np.float32)]
    for m in cases:
        for flag in (None, True, False):
            assert ours(engine.tensor(m), flag, S) == theirs(torch.tensor(m), flag, S), (m, flag)
    assert ours(None, None) is False and ours(None, True) is True


def test_generate_square_subsequent_mask_dtype():
    mk = nn.Transformer.generate_square_subsequent_mask(4, dtype=engine.float64)
    assert mk.dtype is engine.float64
    np.testing.assert_array_equal(mk.numpy(), TNN.Transformer.generate_square_subsequent_mask(4).numpy())


def test_engine_as_torch_program():
    """A small training step written against the torch API runs on engine."""
    import engine as torch_  # noqa: F401 -- the `import engine as torch` style
    model = nn.Transformer(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF,
                           dropout=0.1, batch_first=True)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    src, tgt = engine.tensor(randn(2, S, D)), engine.tensor(randn(2, T, D))
    mask = nn.Transformer.generate_square_subsequent_mask(T)
    loss = model(src, tgt, tgt_mask=mask, tgt_is_causal=True).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())
    copy.deepcopy(model)
