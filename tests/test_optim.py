import numpy as np
import pytest

from seqgen import ConfigError
from seqgen.training.optim import OPTIMIZERS, Optimizer


def _reference_step(name, p, g, state, t, lr, momentum=0.0, beta1=0.9, beta2=0.999, rho=0.9, eps=1e-8):
    if name == "sgd":
        state["v"] = momentum * state.get("v", 0) + g
        return p - lr * state["v"]
    if name == "adagrad":
        state["a"] = state.get("a", 0) + g * g
        return p - lr * g / (np.sqrt(state["a"]) + eps)
    if name == "rmsprop":
        state["s"] = rho * state.get("s", 0) + (1 - rho) * g * g
        return p - lr * g / (np.sqrt(state["s"]) + eps)
    state["m"] = beta1 * state.get("m", 0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0) + (1 - beta2) * g * g
    m_hat = state["m"] / (1 - beta1 ** (t + 1))
    v_hat = state["v"] / (1 - beta2 ** (t + 1))
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)  # the textbook update (Kingma & Ba, Algorithm 1)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_match_their_textbook_updates(name):
    rng = np.random.default_rng(0)
    W = np.asfortranarray(rng.standard_normal((3, 4)))  # matrices are stored transposed
    params = {"W": W, "b": rng.standard_normal(4)}
    expected = {k: v.copy() for k, v in params.items()}
    states = {k: {} for k in params}
    # seqgen's Adam folds the bias corrections into the step size (the paper's faster form), which
    # moves eps by a factor sqrt(1 - beta2^t); a tiny eps makes that immaterial, so the textbook
    # update above is an independent check of everything else.
    kwargs = {"momentum": 0.9} if name == "sgd" else {"eps": 1e-14} if name == "adam" else {}
    opt = Optimizer(name, params, lr=0.05, **kwargs)
    for t in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        grads["W"] = np.asfortranarray(grads["W"])
        opt.step(params, grads)
        for k in params:
            expected[k] = _reference_step(name, expected[k], grads[k], states[k], t, 0.05, **kwargs)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-12)


def test_adam_minimises_a_quadratic():
    params = {"x": np.array([3.0, -2.0])}
    opt = Optimizer("adam", params, lr=0.1)
    for _ in range(500):
        opt.step(params, {"x": 2 * params["x"]})
    assert np.abs(params["x"]).max() < 1e-2


def test_learning_rate_decay():
    opt = Optimizer("sgd", {"x": np.zeros(1)}, lr=1.0, decay=0.5, decay_every=10)
    assert opt.current_lr() == 1.0
    opt.t = 20
    assert opt.current_lr() == pytest.approx(0.25)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    p1 = {"x": rng.standard_normal(5)}
    p2 = {"x": p1["x"].copy()}
    a = Optimizer("adam", p1)
    grads = [{"x": rng.standard_normal(5)} for _ in range(6)]
    for g in grads[:3]:
        a.step(p1, g)
    b = Optimizer("adam", p2)
    for g in grads[:3]:
        b.step(p2, g)
    c = Optimizer("adam", {"x": p2["x"]})
    c.load_state(b.t, {k: v.copy() for k, v in b.state_arrays().items()})
    for g in grads[3:]:
        a.step(p1, g)
        c.step(p2, g)
    np.testing.assert_array_equal(p1["x"], p2["x"])


@pytest.mark.parametrize("kwargs, message", [({"name": "lbfgs"}, "unknown optimizer"), ({"lr": 0}, "learning rate"),
                                             ({"decay": 1.5}, "decay"), ({"momentum": 1.0}, "momentum")])
def test_bad_settings(kwargs, message):
    args = {"name": "sgd", "params": {"x": np.zeros(1)}} | kwargs
    with pytest.raises(ConfigError, match=message):
        Optimizer(**args)


def test_weight_decay_is_decoupled_and_spares_biases():
    """AdamW (Loshchilov & Hutter, Algorithm 2): W <- W * (1 - lr_t * wd), then the Adam step;
    vectors (biases) are not decayed."""
    rng = np.random.default_rng(2)
    params = {"W": np.asfortranarray(rng.standard_normal((3, 4))), "b": rng.standard_normal(4)}
    expected = {k: v.copy() for k, v in params.items()}
    states = {k: {} for k in params}
    opt = Optimizer("adam", params, lr=0.05, eps=1e-14, weight_decay=0.3, decay=0.5, decay_every=2)
    for t in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        lr_t = 0.05 * 0.5 ** (t / 2)
        opt.step(params, grads)
        expected["W"] = expected["W"] * (1 - lr_t * 0.3)
        for k in params:
            expected[k] = _reference_step("adam", expected[k], grads[k], states[k], t, lr_t, eps=1e-14)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-12)


def test_weight_decay_alone_shrinks_matrices_geometrically():
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt = Optimizer("sgd", params, lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.step(params, {"W": np.zeros((2, 2)), "b": np.zeros(2)})
    np.testing.assert_allclose(params["W"], 0.95**3)
    np.testing.assert_array_equal(params["b"], 1.0)


def test_warmup_then_cosine_schedule():
    opt = Optimizer("adam", {"x": np.zeros(1)}, lr=1.0, schedule="cosine", warmup=4, total_steps=14, min_lr=0.1)
    lrs = []
    for t in range(16):
        opt.t = t
        lrs.append(opt.current_lr())
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warmup, reaching lr at its last step
    assert lrs[4] == pytest.approx(1.0)  # the cosine starts at lr ...
    assert lrs[9] == pytest.approx(0.55)  # ... is halfway down halfway through ...
    assert lrs[14] == lrs[15] == pytest.approx(0.1)  # ... and ends at min_lr
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_warmup_with_the_exponential_schedule():
    opt = Optimizer("sgd", {"x": np.zeros(1)}, lr=1.0, warmup=2, decay=0.5, decay_every=10)
    opt.t = 0
    assert opt.current_lr() == 0.5
    opt.t = 20
    assert opt.current_lr() == pytest.approx(0.25)


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "cosine"}, "needs the number of steps"),
    ({"schedule": "linear"}, "unknown schedule"),
    ({"schedule": "cosine", "total_steps": 10, "min_lr": 2.0}, "min_lr"),
    ({"weight_decay": 1.5}, "weight decay"),
    ({"decay": 0.0}, "decay"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Optimizer("adam", {"x": np.zeros(1)}, lr=1.0, **kwargs)
