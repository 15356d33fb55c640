"""repeat_interleave and bincount vs torch (values, dtypes, gradients, errors)."""
import numpy as np
import pytest
import torch

import engine
from tests.engine.helpers import assert_close, check_op, rand


@pytest.mark.parametrize("shape,reps,dim", [((5,), 2, None), ((2, 3), 3, 1), ((2, 3), [1, 0], 0),
                                            ((2, 3), [2, 1, 3], -1), ((), 3, None), ((0, 3), 2, 0),
                                            ((4,), [0, 0, 0, 0], 0)])
def test_repeat_interleave_matches_torch(shape, reps, dim):
    def fn(T, x):
        r = T.tensor(reps) if isinstance(reps, list) else reps
        return T.repeat_interleave(x, r, dim=dim) if dim is not None else x.repeat_interleave(r)
    check_op(fn, rand(shape), noncontig=True)


def test_repeat_interleave_index_form_and_errors():
    assert engine.repeat_interleave(engine.tensor([2, 0, 1])).tolist() == [0, 0, 2]
    x = engine.tensor([[1, 2], [3, 4]])
    with pytest.raises(RuntimeError, match="repeats must have the same size as input along dim"):
        x.repeat_interleave(engine.tensor([1, 2, 3]), dim=0)
    with pytest.raises(RuntimeError, match="non-negative"):
        x.repeat_interleave(-1)
    with pytest.raises(IndexError):
        x.repeat_interleave(2, dim=2)
    assert x.repeat_interleave(2, dim=0, output_size=4).shape == (4, 2)


@pytest.mark.parametrize("vals,minlength,weighted", [([0, 1, 1, 5], 0, False), ([3], 6, False), ([], 3, False),
                                                     ([2, 2, 0], 0, True), ([], 0, False)])
def test_bincount_matches_torch(vals, minlength, weighted):
    w = np.linspace(0.5, 2.0, len(vals)).astype(np.float32) if weighted else None
    t = torch.bincount(torch.tensor(vals, dtype=torch.int64), None if w is None else torch.tensor(w), minlength)
    e = engine.bincount(engine.tensor(vals, dtype=engine.int64), None if w is None else engine.tensor(w), minlength)
    assert_close(e, t)


def test_bincount_errors():
    with pytest.raises(RuntimeError, match="non-negative integral"):
        engine.bincount(engine.tensor([-1, 2]))
    with pytest.raises(RuntimeError, match="non-negative integral"):
        engine.bincount(engine.tensor([[1]]))
    with pytest.raises(NotImplementedError):
        engine.bincount(engine.tensor([1.0]))
