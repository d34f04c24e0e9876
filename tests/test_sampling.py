import numpy as np
import pytest

from seqgen import ConfigError, Model, ShapeError
from seqgen.generation.sampler import generate, stream


@pytest.fixture(scope="module", params=["rnn", "lstm", "gru"])
def model(request):
    return Model.create(request.param, 9, 12, 2, seed=4, dtype="float64")


def test_same_seed_same_samples_and_stream_agrees(model):
    a = generate(model, n=4, length=30, seed=11)
    b = generate(model, n=4, length=30, seed=11)
    c = generate(model, n=4, length=30, seed=12)
    streamed = np.array(list(stream(model, n=4, length=30, seed=11)))
    for i in range(4):
        np.testing.assert_array_equal(a.samples[i], b.samples[i])
        np.testing.assert_array_equal(a.samples[i], streamed[:, i])
    assert any(not np.array_equal(a.samples[i], c.samples[i]) for i in range(4))


def test_sampler_feeds_samples_back_and_reports_log_probability(model):
    g = generate(model, n=2, length=6, prime=[1, 2, 3], seed=5)
    for i in range(2):
        state = model.run(np.array([[1], [2]]))
        inputs = [3] + list(g.samples[i])
        logp = 0.0
        for t in range(6):
            probs, state = model.step(np.array([inputs[t]]), state)
            logp += np.log(probs[0, inputs[t + 1]])
        assert g.logp[i] == pytest.approx(logp)


def test_greedy_is_the_low_temperature_limit(model):
    greedy = generate(model, n=1, length=20, greedy=True).samples[0]
    cold = generate(model, n=1, length=20, temperature=1e-4, seed=3).samples[0]
    np.testing.assert_array_equal(greedy, cold)
    state = None
    token = 0
    for t in range(20):
        probs, state = model.step(np.array([token]), state)
        token = int(np.argmax(probs[0]))
        assert greedy[t] == token


def test_top_k_and_top_p_never_emit_excluded_tokens():
    m = Model.create("rnn", 20, 8, 1, seed=0, dtype="float64")
    probs, _ = m.step(np.array([0]))
    order = np.argsort(-probs[0], kind="mergesort")
    n = 4000
    top_k = generate(m, n=n, length=1, prime=[0], top_k=3, seed=1)
    drawn = np.array([s[0] for s in top_k.samples])
    assert set(drawn.tolist()) == set(order[:3].tolist())
    cumulative = np.cumsum(probs[0][order])
    nucleus = set(order[: int(np.searchsorted(cumulative, 0.5) + 1)].tolist())
    top_p = generate(m, n=n, length=1, prime=[0], top_p=0.5, seed=2)
    assert set(s[0] for s in top_p.samples) <= nucleus
    plain = generate(m, n=n, length=1, prime=[0], seed=3)
    assert len(set(s[0] for s in plain.samples)) > len(nucleus)


def test_sampling_frequencies_follow_the_model():
    m = Model.create("lstm", 5, 6, 1, seed=2, dtype="float64")
    probs, _ = m.step(np.array([1]))
    g = generate(m, n=20000, length=1, prime=[1], seed=0)
    counts = np.bincount([s[0] for s in g.samples], minlength=5) / 20000
    np.testing.assert_allclose(counts, probs[0], atol=0.015)


def test_stop_token_ends_each_sample():
    m = Model.create("gru", 4, 6, 1, seed=0)
    g = generate(m, n=50, length=200, stop_id=2, seed=0)
    for s in g.samples:
        assert (s[:-1] != 2).all()
        assert s[-1] == 2 or len(s) == 200
    assert sum(s[-1] == 2 for s in g.samples) > 40


@pytest.mark.parametrize(
    "kwargs, message",
    [({"temperature": 0}, "temperature"), ({"top_p": 0}, "top-p"), ({"top_p": 1.5}, "top-p"),
     ({"length": 0}, "length"), ({"n": 0}, "samples"), ({"top_k": -1}, "top-k")],
)
def test_bad_options(kwargs, message):
    m = Model.create("rnn", 4, 3)
    with pytest.raises(ConfigError, match=message):
        generate(m, **kwargs)


def test_bad_primer():
    m = Model.create("rnn", 4, 3)
    with pytest.raises(ShapeError):
        generate(m, prime=[7])
    with pytest.raises(ShapeError):
        generate(m, prime=[])


def test_a_stream_does_not_depend_on_n_or_on_its_batch():
    """Stream i of a seed draws from its own generator, and the kernel's products sum each row
    in one order whatever the batch, so a stream's tokens and state are the same in any batch
    (with BLAS products the state differed in the last bits and, rarely, a token changed)."""
    from seqgen.generation.sampler import Batch, Params, Weights, primed_state, stream_generators
    from seqgen.generation.samples import load_model

    for name in ("shakespeare", "dinos", "chorale"):
        m = load_model(name).model
        alone = generate(m, n=1, length=150, seed=5).samples[0]
        np.testing.assert_array_equal(generate(m, n=10, length=150, seed=5).samples[0], alone)
        single = Batch(Weights(m))
        single.add(primed_state(m, [0]), 0, Params(), stream_generators(5, 1), 150, ["mine"])
        single_out, _ = single.steps(100)
        # the same stream at row 20 of a batch of 37, joining 7 steps after the others
        batch = Batch(Weights(m))
        others = Params(temperature=0.7, top_k=5)
        batch.add(primed_state(m, [1, 2, 3]), 3, others, stream_generators(99, 20), 300, range(20))
        batch.steps(7)
        batch.add(primed_state(m, [0]), 0, Params(), stream_generators(5, 1), 150, ["mine"])
        batch.add(primed_state(m, [2]), 2, others, stream_generators(98, 16), 300, range(16))
        out, _ = batch.steps(100)
        np.testing.assert_array_equal(out[:, 20], single_out[:, 0])
        assert np.array_equal(batch.state[:, :, 20], single.state[:, :, 0])  # bit for bit
        out, _ = batch.steps(50)
        np.testing.assert_array_equal(out[out[:, 20] >= 0, 20], alone[100:])


def test_rows_dot_is_a_matrix_product_whose_rows_do_not_depend_on_the_batch():
    from seqgen.kernels.sample import rows_dot

    rng = np.random.default_rng(0)
    for K, M in ((192, 768), (50, 65), (7, 3), (13, 130)):
        x = rng.standard_normal((37, K)).astype(np.float32)
        W = rng.standard_normal((K, M)).astype(np.float32)
        full = np.empty((37, M), np.float32)
        rows_dot(x, W, full)
        np.testing.assert_allclose(full, x.astype(np.float64) @ W, rtol=1e-4, atol=1e-4 * np.sqrt(K))
        for start, N in ((0, 1), (5, 1), (5, 2), (3, 4), (10, 9), (20, 17)):
            part = np.empty((N, M), np.float32)
            rows_dot(np.ascontiguousarray(x[start:start + N]), W, part)
            assert np.array_equal(part, full[start:start + N]), (K, M, start, N)


def test_sort_descending_is_numpys_stable_argsort_of_minus_weights():
    from seqgen.kernels.sample import _sort_descending

    rng = np.random.default_rng(0)
    for trial in range(300):
        V = int(rng.integers(1, 200))
        w = rng.random(V)
        if trial % 3 == 0:
            w = np.round(w * 4) / 4  # ties keep index order
        if trial % 5 == 0:
            w[rng.integers(0, V, 4)] = 0.0
        if trial % 7 == 0:
            w[rng.integers(0, V, 2)] = np.nan  # numpy sorts NaN last
        order, spare = np.empty(V, np.int64), np.empty(V, np.int64)
        _sort_descending(w, order, spare)
        np.testing.assert_array_equal(order, np.argsort(-w, kind="mergesort"))
