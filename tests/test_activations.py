import numpy as np
import pytest

from seqgen._numba import jit
from seqgen.kernels.activations import sigmoid, tanh


@jit
def _apply(x, out_tanh, out_sigmoid):
    for k in range(x.shape[0]):
        out_tanh[k] = tanh(x[k])
        out_sigmoid[k] = sigmoid(x[k])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-15), (np.float32, 4e-7)])
def test_activations_accuracy(dtype, tol):
    x = np.concatenate([np.linspace(-30, 30, 100_001), [0.0, 1e-8, -1e-8, 7.9, 8.5]]).astype(dtype)
    t, s = np.empty_like(x), np.empty_like(x)
    _apply(x, t, s)
    exact_t = np.tanh(x.astype(np.float64))
    exact_s = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.abs(t - exact_t).max() <= tol * 2
    assert np.all(np.abs(t - exact_t) <= tol * np.abs(exact_t) + 1e-30 + (dtype == np.float32) * 1e-9)
    assert np.abs(s - exact_s).max() <= tol * 2
    assert t.dtype == dtype and np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))
