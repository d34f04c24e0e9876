"""The thread policy: training row blocks on seqgen's own threads, results independent of the
thread count."""

import threading

import numpy as np
import pytest

from seqgen import Model, threads


@pytest.fixture
def cap():
    """Set the thread cap for one test and put it back."""
    saved = threads._limit
    yield lambda n: setattr(threads, "_limit", n)
    threads._limit = saved


def test_parallel_map_runs_items_on_separate_threads_in_order(cap):
    cap(2)
    barrier = threading.Barrier(2, timeout=10)  # fails unless both items run at once

    def work(i):
        barrier.wait()
        return i, threading.get_ident()

    out = threads.parallel_map(work, [0, 1])
    assert [i for i, _ in out] == [0, 1]
    assert out[0][1] != out[1][1]


def test_parallel_map_with_one_thread_runs_in_the_caller(cap):
    cap(1)
    me = threading.get_ident()
    assert threads.parallel_map(lambda i: (i, threading.get_ident()), [0, 1, 2]) == [(0, me), (1, me), (2, me)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_results_do_not_depend_on_the_thread_count(cell, cap):
    m = Model.create(cell, 11, 24, 2, seed=3)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 11, (9, 7)), rng.integers(-1, 11, (9, 7))
    results = []
    for n in (1, 2):
        cap(n)
        results.append(m.backprop(x, y, dropout=0.3, rng=np.random.default_rng(5)))
    one, two = results
    assert one.loss == two.loss
    for name in one.grads:
        np.testing.assert_array_equal(one.grads[name], two.grads[name], err_msg=name)
    np.testing.assert_array_equal(one.state, two.state)
    np.testing.assert_array_equal(one.d_state, two.d_state)


def test_row_blocks_give_the_whole_batch_result():
    """Blocks of rows against one pass over the whole batch (float64, to rounding)."""
    m = Model.create("lstm", 7, 6, 2, seed=1, dtype="float64")
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 7, (5, 4)), rng.integers(-1, 7, (5, 4))
    state = 0.3 * rng.standard_normal(m.initial_state(4).shape)
    got = m.backprop(x, y, state)
    inputs, targets, st = m._check_window(x, y, state)
    caches, logits, final = m._forward(inputs, st, None)
    from seqgen.kernels.loss import softmax_xent

    total, count = softmax_xent(logits, targets.reshape(-1))
    grads, d_state = m._backward(inputs, caches, logits, None)
    assert got.loss == pytest.approx(total / count, abs=1e-12)
    for name in grads:
        np.testing.assert_allclose(got.grads[name], grads[name], rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(got.state, final, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.d_state, d_state, rtol=0, atol=1e-12)
    nll, n, fin = m.evaluate(x, y, state)
    assert (nll, n) == (pytest.approx(total, abs=1e-12), count)
    np.testing.assert_allclose(fin, final, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_samples_do_not_depend_on_the_thread_count(cell, cap, monkeypatch):
    """generate splits many streams into blocks on seqgen's threads; every stream keeps its tokens
    and log-probabilities, whether its block runs alone or beside others."""
    from seqgen.generation import sampler

    m = Model.create(cell, 13, 16, 2, seed=4)
    seen = []
    steps = sampler.Batch.steps

    def recording_steps(batch, k):
        seen.append((len(batch), threading.get_ident()))
        return steps(batch, k)

    monkeypatch.setattr(sampler.Batch, "steps", recording_steps)
    results = []
    for n in (1, 2):
        cap(n)
        seen.clear()
        results.append(sampler.generate(m, n=19, length=40, prime=[1, 2], temperature=1.3, top_p=0.97, stop_id=3,
                                        seed=7))
        assert sorted(size for size, _ in seen) == ([19] if n == 1 else [9, 10])
        assert len({thread for _, thread in seen}) == n
    one, two = results
    assert len(two.samples) == 19 and any(len(s) < 40 for s in two.samples)  # some stopped early
    for a, b in zip(one.samples + one.token_logp, two.samples + two.token_logp):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.logp, two.logp)
