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
