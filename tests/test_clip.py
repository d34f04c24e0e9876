import numpy as np
import pytest

from seqgen import ConfigError
from seqgen.training.clip import clip_by_norm, clip_by_value, global_norm


def _grads():
    return {"a": np.array([[-10.0, 0.5], [3.0, 7.0]]), "b": np.array([-0.1, 12.0])}


def test_clip_by_value_clips_each_element():
    grads = clip_by_value(_grads(), 5.0)
    np.testing.assert_array_equal(grads["a"], [[-5.0, 0.5], [3.0, 5.0]])
    np.testing.assert_array_equal(grads["b"], [-0.1, 5.0])


def test_clip_by_norm_scales_all_together():
    grads = _grads()
    before = global_norm(grads)
    assert before == pytest.approx(np.sqrt(100 + 0.25 + 9 + 49 + 0.01 + 144))
    returned = clip_by_norm(grads, 2.0)
    assert returned == pytest.approx(before)
    assert global_norm(grads) == pytest.approx(2.0)
    np.testing.assert_allclose(grads["b"], _grads()["b"] * 2.0 / before)


def test_clip_by_norm_leaves_small_gradients_alone():
    grads = _grads()
    clip_by_norm(grads, 1e6)
    np.testing.assert_array_equal(grads["a"], _grads()["a"])


def test_clipping_works_on_transposed_layouts():
    g = {"W": np.asfortranarray(np.array([[3.0, -4.0]]))}
    assert global_norm(g) == pytest.approx(5.0)
    clip_by_value(g, 1.0)
    np.testing.assert_array_equal(g["W"], [[1.0, -1.0]])


@pytest.mark.parametrize("fn", [clip_by_value, clip_by_norm])
def test_clip_threshold_must_be_positive(fn):
    with pytest.raises(ConfigError):
        fn(_grads(), 0)
