"""Bidirectional layers and the tag/classify heads: the kernels against the numpy reference (one
item and one step at a time, float64 to 1e-10), against centred finite differences, and against
PyTorch's ``bidirectional=True`` modules when torch is installed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import _centred_differences, assert_float32_tracks_float64

from seqgen import Model
from seqgen.engine import heads
from seqgen.engine import reference as ref
from seqgen.engine.model import ModelConfig
from seqgen.errors import ConfigError

CELLS = ["rnn", "lstm", "gru"]
LABELS = ("A", "B", "C")


def _task_window(model, lengths, rng, T=None):
    """Random inputs and targets for items of the given lengths, padded to T."""
    lengths = np.asarray(lengths)
    T = T or int(lengths.max())
    B = len(lengths)
    inputs = rng.integers(0, model.config.vocab_size, (T, B))
    n_y = model.config.output_size
    if model.config.task == "tag":
        targets = rng.integers(0, n_y, (T, B))
    else:
        targets = np.full((T, B), -1)
        targets[lengths - 1, np.arange(B)] = rng.integers(0, n_y, B)
    targets[np.arange(T)[:, None] >= lengths[None, :]] = -1
    state = 0.5 * rng.standard_normal(model.initial_state(B).shape)
    return inputs, targets, state


@settings(max_examples=40, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    task=st.sampled_from(["tag", "classify"]),
    bidirectional=st.booleans(),
    pooling=st.sampled_from(heads.POOLINGS),
    layers=st.integers(1, 3),
    hidden=st.integers(1, 5),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    pad=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_task_kernels_match_reference(cell, task, bidirectional, pooling, layers, hidden, lengths, pad, seed):
    model = Model.create(cell, 5, hidden, layers, seed=seed, dtype="float64", task=task,
                         bidirectional=bidirectional, labels=LABELS, pooling=pooling)
    rng = np.random.default_rng(seed)
    inputs, targets, state = _task_window(model, lengths, rng, T=max(lengths) + pad)
    got = model.backprop(inputs, targets, state)
    loss, grads, d_state = ref.task_loss_and_grads(cell, model.params, inputs, targets, state, task,
                                                   bidirectional, pooling)
    assert got.loss == pytest.approx(loss, abs=1e-10)
    assert set(got.grads) == set(grads)
    for name in grads:
        np.testing.assert_allclose(got.grads[name], grads[name], rtol=0, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(got.d_state, d_state, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task,pooling", [("tag", "last"), ("classify", "last"), ("classify", "mean")])
def test_bidirectional_gradients_match_finite_differences(cell, task, pooling):
    model = Model.create(cell, 5, 3, 2, seed=4, dtype="float64", task=task, bidirectional=True, labels=LABELS,
                         pooling=pooling)
    rng = np.random.default_rng(11)
    inputs, targets, state = _task_window(model, [4, 2, 3], rng)
    result = model.backprop(inputs, targets, state)

    def loss_at():
        total, count, _ = model.evaluate(inputs, targets, state)
        return total / count

    for name, param in model.params.items():
        numeric = _centred_differences(param, loss_at, 1e-6)
        np.testing.assert_allclose(result.grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    np.testing.assert_allclose(result.d_state, _centred_differences(state, loss_at, 1e-6), rtol=1e-5, atol=1e-8)


def test_backward_direction_reads_the_future():
    """A bidirectional tagger's label at step 0 depends on the last input; a unidirectional
    one's cannot."""
    rng = np.random.default_rng(0)
    for bidirectional, expect_change in ((True, True), (False, False)):
        model = Model.create("gru", 6, 4, 2, seed=1, dtype="float64", task="tag", bidirectional=bidirectional,
                             labels=LABELS)
        inputs = rng.integers(0, 6, (5, 1))
        before = model.predict(inputs)[0, 0]
        inputs[-1, 0] = (inputs[-1, 0] + 1) % 6
        after = model.predict(inputs)[0, 0]
        assert (np.abs(after - before).max() > 1e-9) == expect_change


def test_padding_does_not_change_an_item():
    """An item padded with other tokens after its end gets the same labels and class."""
    rng = np.random.default_rng(2)
    for task in ("tag", "classify"):
        model = Model.create("lstm", 6, 4, 2, seed=3, dtype="float64", task=task, bidirectional=True, labels=LABELS)
        item = rng.integers(0, 6, (3, 1))
        alone = model.predict(item)
        padded = np.concatenate([item, rng.integers(0, 6, (4, 1))])
        with_pad = model.predict(padded, lengths=[3])
        np.testing.assert_allclose(with_pad[:3] if task == "tag" else with_pad, alone, rtol=0, atol=1e-12)


def test_reversal_reverses_each_item_and_keeps_padding():
    rev = heads.reversal(np.array([3, 1, 4]), 4)
    assert rev[:, 0].tolist() == [2, 1, 0, 3]
    assert rev[:, 1].tolist() == [0, 1, 2, 3]
    assert rev[:, 2].tolist() == [3, 2, 1, 0]
    assert (rev[rev, np.arange(3)] == np.arange(4)[:, None]).all()  # its own inverse


def test_language_model_cannot_be_bidirectional_and_keeps_its_config():
    with pytest.raises(ConfigError, match="cannot read ahead"):
        ModelConfig("lstm", 5, 4, bidirectional=True)
    lm = Model.create("lstm", 5, 4)
    assert set(lm.config_dict()) == {"cell", "vocab_size", "hidden_size", "num_layers", "dtype"}
    tagger = Model.create("lstm", 5, 4, task="tag", bidirectional=True, labels=LABELS)
    assert ModelConfig(**tagger.config_dict()) == tagger.config
    with pytest.raises(ConfigError, match="cannot generate"):
        tagger.step(np.array([0]))


@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_float32_tracks_float64(cell):
    m64 = Model.create(cell, 7, 16, 2, seed=1, dtype="float64", task="tag", bidirectional=True, labels=LABELS)
    m32 = Model(ModelConfig(**{**m64.config_dict(), "dtype": "float32"}), m64.params)
    rng = np.random.default_rng(0)
    inputs, targets, state = _task_window(m64, [20, 13, 7, 20], rng)
    assert_float32_tracks_float64(m64, m32, inputs, targets, state)


# ---------------------------------------------------------------- PyTorch's bidirectional modules
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_bidirectional_matches_pytorch(cell, layers):
    torch = pytest.importorskip("torch")
    H, V, T, B = 4, 6, 5, 3
    model = Model.create(cell, V, H, layers, seed=7, dtype="float64", task="tag", bidirectional=True, labels=LABELS)
    rng = np.random.default_rng(5)
    inputs, targets, state = _task_window(model, [T] * B, rng)  # full length: torch reverses all T steps
    ours = model.backprop(inputs, targets, state)

    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        V, H, num_layers=layers, bidirectional=True, dtype=torch.float64)
    p, G = model.params, model.config.gates
    with torch.no_grad():
        for l in range(layers):
            for ours_prefix, suffix in ((f"l{l}.", ""), (f"l{l}r.", "_reverse")):
                getattr(module, f"weight_ih_l{l}{suffix}").copy_(torch.from_numpy(p[ours_prefix + "Wax"]))
                getattr(module, f"weight_hh_l{l}{suffix}").copy_(torch.from_numpy(p[ours_prefix + "Waa"]))
                getattr(module, f"bias_ih_l{l}{suffix}").copy_(torch.from_numpy(p[ours_prefix + "ba"]))
                b_hh = np.zeros(G * H)
                if cell == "gru":
                    b_hh[2 * H:] = p[ours_prefix + "bn"]
                getattr(module, f"bias_hh_l{l}{suffix}").copy_(torch.from_numpy(b_hh))
    x = torch.nn.functional.one_hot(torch.from_numpy(inputs), V).double()
    h0 = torch.from_numpy(state[:, 0]).requires_grad_()
    hx = (h0, torch.from_numpy(state[:, 1]).requires_grad_()) if cell == "lstm" else h0
    out, _ = module(x, hx)
    Wya = torch.from_numpy(p["Wya"]).requires_grad_()
    by = torch.from_numpy(p["by"]).requires_grad_()
    logits = (out @ Wya.T + by).reshape(T * B, -1)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(targets.reshape(-1)).long(), ignore_index=-1)
    loss.backward()

    assert ours.loss == pytest.approx(loss.item(), abs=1e-12)
    np.testing.assert_allclose(ours.grads["Wya"], Wya.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.grads["by"], by.grad.numpy(), atol=1e-12)
    for l in range(layers):
        for ours_prefix, suffix in ((f"l{l}.", ""), (f"l{l}r.", "_reverse")):
            def grad(name, l=l, suffix=suffix):
                return getattr(module, f"{name}_l{l}{suffix}").grad.numpy()
            np.testing.assert_allclose(ours.grads[ours_prefix + "Wax"], grad("weight_ih"), atol=1e-12)
            np.testing.assert_allclose(ours.grads[ours_prefix + "Waa"], grad("weight_hh"), atol=1e-12)
            np.testing.assert_allclose(ours.grads[ours_prefix + "ba"], grad("bias_ih"), atol=1e-12)
            if cell == "gru":
                np.testing.assert_allclose(ours.grads[ours_prefix + "bn"], grad("bias_hh")[2 * H:], atol=1e-12)
    np.testing.assert_allclose(ours.d_state[:, 0], h0.grad.numpy(), atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(ours.d_state[:, 1], hx[1].grad.numpy(), atol=1e-12)
