"""F.pad (constant with negative pads, reflect, replicate, circular) and the padding modules
against PyTorch: forward and grad, repr, errors."""
import numpy as np
import pytest
import torch

import engine
from tests.engine.helpers import check_op, fp64
from tests.nn.helpers import check_module, randn

X = (2, 3, 5, 6)


@pytest.mark.parametrize("pad,value", [
    ((1, 1), None), ((1, 2, 3, 0), 1.5), ((-1, 2, 0, -2), None), ((-2, -1), 0.0), ((1, 0, 0, 1, 2, 2), -1.0),
    ((0, 0, 0, 0), None), ((1, 1, 1, 1, 0, 1, 1, 0), 2.0),
])
def test_pad_constant(pad, value):
    check_op(lambda T, x: T.nn.functional.pad(x, pad, value=value), randn(*X))
    check_op(lambda T, x: T.nn.functional.pad(x, pad, value=value), randn(*X), noncontig=True)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(2, 1), (1, 2, 3, 0), (-1, 2, 1, -1)])
def test_pad_modes(mode, pad):
    x = randn(*(X if len(pad) == 4 else X[1:]))
    check_op(lambda T, x: T.nn.functional.pad(x, pad, mode=mode), x)


def test_pad_modes_3d_input():
    for mode in ["reflect", "replicate", "circular"]:
        check_op(lambda T, x: T.nn.functional.pad(x, (2, 3), mode=mode), randn(3, 5))


def test_pad_int_dtype_and_empty():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    check_op(lambda T, x: T.nn.functional.pad(x, (1, 1), value=7), x)
    check_op(lambda T, x: T.nn.functional.pad(x, (1, 1)), randn(0, 3))


@pytest.mark.skipif(not fp64(), reason="device has no fp64")
def test_pad_double_backward():
    x = engine.tensor(np.random.randn(2, 3), dtype=engine.float64, requires_grad=True)
    assert engine.autograd.gradgradcheck(lambda x: engine.nn.functional.pad(x, (1, -1, 2, 0)) ** 2, (x,))


@pytest.mark.parametrize("ctor", [
    lambda M: M.nn.ZeroPad2d(1), lambda M: M.nn.ZeroPad2d((1, 0, 2, -1)), lambda M: M.nn.ConstantPad1d(2, 3.5),
    lambda M: M.nn.ConstantPad2d((1, 2, 3, 4), 0.0), lambda M: M.nn.ReflectionPad2d(1),
    lambda M: M.nn.ReplicationPad2d((1, 0, 2, 1)), lambda M: M.nn.ZeroPad1d(1),
    lambda M: M.nn.CircularPad2d(1),
])
def test_pad_modules(ctor):
    e, t = ctor(engine), ctor(torch)
    assert repr(e) == repr(t)
    check_module(e, t, randn(*X))


def test_pad1d_modules():
    for ctor in [lambda M: M.nn.ReflectionPad1d(2), lambda M: M.nn.ReplicationPad1d((1, 3)),
                 lambda M: M.nn.CircularPad1d(1)]:
        e, t = ctor(engine), ctor(torch)
        assert repr(e) == repr(t)
        check_module(e, t, randn(*X[1:]))


def _same_error(fe, ft):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(et.type) as ee:
        fe()
    assert str(ee.value) == str(et.value)


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.pad(M.zeros(1, 3, 5, 5), (1, 2, 3)),
    lambda M: M.nn.functional.pad(M.zeros(1, 3, 5, 5), (1, 1), mode="reflect"),
    lambda M: M.nn.functional.pad(M.zeros(1, 3, 5, 5), (1, 1), mode="foo"),
    lambda M: M.nn.functional.pad(M.zeros(5), (1, 1, 1, 1, 1, 1)),
    lambda M: M.nn.functional.pad(M.zeros(1, 5, 5), (5, 1), mode="reflect"),
])
def test_pad_errors(case):
    _same_error(lambda: case(engine), lambda: case(torch))
