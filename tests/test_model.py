import numpy as np
import pytest

from seqgen import ConfigError, Model, SeqgenError, ShapeError


@pytest.fixture(scope="module")
def lstm():
    return Model.create("lstm", vocab_size=6, hidden_size=5, num_layers=2, seed=0, dtype="float64")


def test_params_use_the_notes_names_and_shapes(lstm):
    shapes = {k: v.shape for k, v in lstm.params.items()}
    assert shapes == {
        "l0.Wax": (20, 6), "l0.Waa": (20, 5), "l0.ba": (20,),
        "l1.Wax": (20, 5), "l1.Waa": (20, 5), "l1.ba": (20,),
        "Wya": (6, 5), "by": (6,),
    }
    gru = Model.create("gru", 6, 5)
    assert gru.params["l0.bn"].shape == (5,)
    assert lstm.num_params == sum(int(np.prod(s)) for s in shapes.values())


def test_initialisation_is_seeded_and_stable():
    a = Model.create("lstm", 7, 8, 2, seed=5)
    b = Model.create("lstm", 7, 8, 2, seed=5)
    c = Model.create("lstm", 7, 8, 2, seed=6)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["l0.Waa"], c.params["l0.Waa"])
    waa = a.params["l0.Waa"].astype(np.float64)
    for g in range(4):  # each gate block orthogonal
        block = waa[g * 8 : (g + 1) * 8]
        np.testing.assert_allclose(block @ block.T, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(a.params["l0.ba"][8:16], 1.0)  # forget gate
    np.testing.assert_array_equal(a.params["l0.ba"][:8], 0.0)
    small = Model.create("rnn", 27, 50, init="small", seed=0)
    assert 0.005 < small.params["l0.Waa"].std() < 0.02


def test_initial_loss_is_near_uniform():
    m = Model.create("rnn", 27, 50, init="small", seed=0, dtype="float64")
    x = np.arange(20).reshape(20, 1) % 27
    loss, _, _ = m.loss_and_grads(x, x)
    assert loss == pytest.approx(np.log(27), abs=0.01)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_matches_the_sequence_pass(cell):
    m = Model.create(cell, 6, 5, 2, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 6, (4, 3))
    state = None
    total = 0.0
    for t in range(4):
        probs, state = m.step(seq[t], state)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        if t < 3:
            total -= np.log(probs[np.arange(3), seq[t + 1]]).sum()
    nll, count, final = m.evaluate(seq[:3], seq[1:])
    assert total == pytest.approx(nll)
    assert count == 9
    _, _, final4 = m.evaluate(seq, seq)
    np.testing.assert_allclose(state, final4)


def test_state_carries_across_windows():
    m = Model.create("gru", 6, 5, 1, seed=2, dtype="float64")
    seq = np.random.default_rng(1).integers(0, 6, (8, 2))
    whole, _, _ = m.evaluate(seq, seq)
    first, _, state = m.evaluate(seq[:5], seq[:5])
    second, _, _ = m.evaluate(seq[5:], seq[5:], state)
    assert whole == pytest.approx(first + second)


def test_padding_targets_are_ignored():
    m = Model.create("rnn", 6, 5, seed=0, dtype="float64")
    x = np.array([[1, 2], [3, 4]])
    y = np.array([[2, -1], [4, -1]])
    loss, grads, _ = m.loss_and_grads(x, y)
    loss1, grads1, _ = m.loss_and_grads(x[:, :1], y[:, :1])
    assert loss == pytest.approx(loss1)
    np.testing.assert_allclose(grads["Wya"], grads1["Wya"])


def test_dropout_is_seeded_and_changes_the_loss():
    m = Model.create("lstm", 6, 8, 2, seed=0, dtype="float64")
    x = np.random.default_rng(0).integers(0, 6, (5, 3))
    plain = m.backprop(x, x).loss
    a = m.backprop(x, x, dropout=0.5, rng=np.random.default_rng(1)).loss
    b = m.backprop(x, x, dropout=0.5, rng=np.random.default_rng(1)).loss
    assert a == b and a != plain


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.loss_and_grads(np.zeros((3,), int), np.zeros((3,), int)), "(T, B)"),
        (lambda m: m.loss_and_grads(np.zeros((3, 2)), np.zeros((3, 2), int)), "integer"),
        (lambda m: m.loss_and_grads(np.full((3, 2), 6), np.zeros((3, 2), int)), "out of range"),
        (lambda m: m.loss_and_grads(np.zeros((3, 2), int), np.zeros((3, 1), int)), "targets have shape"),
        (lambda m: m.loss_and_grads(np.zeros((3, 2), int), np.full((3, 2), -2)), "out of range"),
        (lambda m: m.loss_and_grads(np.zeros((3, 2), int), np.zeros((3, 2), int), np.zeros((1, 1, 2, 4))),
         "state has shape"),
        (lambda m: m.loss_and_grads(np.zeros((3, 2), int), np.zeros((3, 2), int), np.zeros((1, 1, 2, 5))), "dtype"),
        (lambda m: m.step(np.zeros((2, 2), int)), "1-d"),
        (lambda m: m.loss_and_grads(np.zeros((0, 2), int), np.zeros((0, 2), int)), "non-empty"),
    ],
)
def test_bad_input_raises_a_clear_seqgen_error(call, message):
    m = Model.create("rnn", 6, 5, seed=0)
    with pytest.raises(ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(m)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "unknown cell"),
        ({"vocab_size": 1}, "one-token"),
        ({"hidden_size": 0}, "positive integer"),
        ({"num_layers": 1.5}, "positive integer"),
        ({"dtype": "float16"}, "dtype"),
        ({"init": "zeros"}, "unknown init"),
    ],
)
def test_bad_config_raises_config_error(kwargs, message):
    args = {"cell": "rnn", "vocab_size": 5, "hidden_size": 3} | kwargs
    with pytest.raises(ConfigError, match=message):
        Model.create(**args)


def test_params_must_match_config():
    m = Model.create("rnn", 5, 3)
    params = dict(m.params)
    params["Wya"] = np.zeros((5, 4))
    with pytest.raises(ShapeError, match="Wya"):
        Model(m.config, params)
    del params["by"]
    with pytest.raises(SeqgenError, match="missing"):
        Model(m.config, params)


@pytest.mark.parametrize("masks", ["step", "sequence"])
@pytest.mark.parametrize("task", ["lm", "classify"])
def test_dropout_gradients_match_finite_differences(masks, task):
    """Between-layer and output dropout, per-step and per-sequence masks: the same masks are drawn
    for every call (a fresh generator with one seed), so the loss is a fixed function to check."""
    labels = ("a", "b", "c") if task == "classify" else ()
    m = Model.create("gru", 7, 5, 2, seed=1, dtype="float64", task=task, labels=labels)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 7, (6, 3))
    y = rng.integers(0, 3, (6, 3)) if task == "classify" else rng.integers(0, 7, (6, 3))

    def run():
        return m.backprop(x, y, None, 0.3, np.random.default_rng(4), dropout_output=0.4, dropout_masks=masks)

    result = run()
    assert result.loss != m.backprop(x, y).loss
    for name, p in m.params.items():
        g = result.grads[name]
        i = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        old = p[i]
        p[i] = old + 1e-6
        up = run().loss
        p[i] = old - 1e-6
        down = run().loss
        p[i] = old
        assert (up - down) / 2e-6 == pytest.approx(g[i], rel=1e-5, abs=1e-8), name


def test_sequence_masks_are_the_same_at_every_step_and_output_masks_leave_lower_draws_alone():
    m = Model.create("lstm", 6, 8, 3, seed=0)
    steps = m._dropout_masks((5, 4), 0.5, 0.0, "step", np.random.default_rng(3))
    with_output = m._dropout_masks((5, 4), 0.5, 0.2, "step", np.random.default_rng(3))
    assert len(steps) == 3 and steps[2] is None and with_output[2].shape == (5, 4, 8)
    for a, b in zip(steps[:2], with_output[:2]):
        np.testing.assert_array_equal(a, b)  # recipes without output dropout draw what they always drew
    seq = m._dropout_masks((5, 4), 0.5, 0.2, "sequence", np.random.default_rng(3))
    assert all(mask.shape == (1, 4, 8) for mask in seq)
    assert set(np.unique(seq[0])) == {0.0, 2.0}  # inverted dropout: kept units scaled by 1 / keep


def test_output_dropout_works_on_one_layer():
    m = Model.create("rnn", 6, 8, 1, seed=0, dtype="float64")
    x = np.random.default_rng(0).integers(0, 6, (5, 3))
    a = m.backprop(x, x, dropout_output=0.5, rng=np.random.default_rng(1)).loss
    assert a == m.backprop(x, x, dropout_output=0.5, rng=np.random.default_rng(1)).loss
    assert a != m.backprop(x, x).loss
