"""The numba kernels against the numpy reference (float64, to 1e-10) and against centred finite
differences of the full loss, for every cell and 1-3 stacked layers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqgen import Model
from seqgen.engine import reference as ref

CELLS = ["rnn", "lstm", "gru"]


def _window(model, T, B, rng, padding=True):
    V = model.config.vocab_size
    inputs = rng.integers(0, V, (T, B))
    targets = rng.integers(-1 if padding else 0, V, (T, B))
    state = 0.5 * rng.standard_normal(model.initial_state(B).shape)
    return inputs, targets, state


@settings(max_examples=40, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    layers=st.integers(1, 3),
    batch=st.integers(1, 5),
    length=st.integers(1, 7),
    hidden=st.integers(1, 6),
    vocab=st.integers(2, 9),
    seed=st.integers(0, 2**16),
)
def test_kernels_match_reference(cell, layers, batch, length, hidden, vocab, seed):
    model = Model.create(cell, vocab, hidden, layers, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    inputs, targets, state = _window(model, length, batch, rng)
    got = model.backprop(inputs, targets, state)
    loss, grads, final, d_state = ref.loss_and_grads(cell, model.params, inputs, targets, state)
    assert got.loss == pytest.approx(loss, abs=1e-10)
    assert set(got.grads) == set(grads)
    for name in grads:
        np.testing.assert_allclose(got.grads[name], grads[name], rtol=0, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(got.state, final, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.d_state, d_state, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_gradients_match_finite_differences(cell, layers):
    model = Model.create(cell, vocab_size=5, hidden_size=4, num_layers=layers, seed=3, dtype="float64")
    rng = np.random.default_rng(7)
    inputs, targets, state = _window(model, 4, 3, rng)
    result = model.backprop(inputs, targets, state)
    eps = 1e-6

    def loss_at():
        total, count, _ = model.evaluate(inputs, targets, state)
        return total / count

    for name, param in model.params.items():
        numeric = _centred_differences(param, loss_at, eps)
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    np.testing.assert_allclose(result.d_state, _centred_differences(state, loss_at, eps), rtol=1e-5, atol=1e-8)


def _centred_differences(array, loss_at, eps):
    """d loss / d array, element by element, perturbing the array in place."""
    numeric = np.empty(array.shape)
    for idx in np.ndindex(array.shape):
        saved = array[idx]
        array[idx] = saved + eps
        plus = loss_at()
        array[idx] = saved - eps
        minus = loss_at()
        array[idx] = saved
        numeric[idx] = (plus - minus) / (2 * eps)
    return numeric


@pytest.mark.parametrize("cell", CELLS)
def test_float32_kernels_track_the_float64_reference(cell):
    """float32 uses a rational tanh/sigmoid (relative error ~3e-7); results stay close."""
    m64 = Model.create(cell, 7, 16, 2, seed=1, dtype="float64")
    m32 = Model(m64.config.__class__(cell, 7, 16, 2, "float32"), m64.params)
    rng = np.random.default_rng(0)
    inputs, targets, state = _window(m64, 20, 4, rng)
    assert_float32_tracks_float64(m64, m32, inputs, targets, state)


def assert_float32_tracks_float64(m64, m32, inputs, targets, state):
    """The float32 model's loss within 1e-5 and every gradient within 1e-3 of its largest
    element of the float64 model's (float32 rounding and the rational tanh allow no better)."""
    r64 = m64.backprop(inputs, targets, state)
    r32 = m32.backprop(inputs, targets, state.astype(np.float32))
    assert r32.loss == pytest.approx(r64.loss, rel=1e-5)
    for name in r64.grads:
        scale = np.abs(r64.grads[name]).max() + 1e-12
        assert np.abs(r32.grads[name] - r64.grads[name]).max() / scale < 1e-3, name


def test_reference_cells_follow_the_notes_backward_formulas():
    """The basic cell's backward pass is the notes' formulas, checked by finite differences."""
    rng = np.random.default_rng(0)
    n_x, n_a, m = 3, 5, 4
    Wax, Waa, ba = rng.standard_normal((n_a, n_x)), rng.standard_normal((n_a, n_a)), rng.standard_normal(n_a)
    xt, a_prev = rng.standard_normal((n_x, m)), rng.standard_normal((n_a, m))
    da_next = rng.standard_normal((n_a, m))
    a_next, cache = ref.rnn_cell_forward(xt, a_prev, Wax, Waa, ba)
    dxt, da_prev, grads = ref.rnn_cell_backward(da_next, cache, Wax, Waa)
    def f(W):
        return float((ref.rnn_cell_forward(xt, a_prev, W, Waa, ba)[0] * da_next).sum())
    eps = 1e-6
    E = np.zeros_like(Wax)
    E[2, 1] = eps
    assert grads["Wax"][2, 1] == pytest.approx((f(Wax + E) - f(Wax - E)) / (2 * eps), rel=1e-6)
    np.testing.assert_allclose(da_prev, Waa.T @ (da_next * (1 - a_next**2)))
    np.testing.assert_allclose(dxt, Wax.T @ (da_next * (1 - a_next**2)))
