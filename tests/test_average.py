"""Polyak averaging (--ema): the average's arithmetic, what a run evaluates and saves, resume."""

import numpy as np
import pytest

from seqgen import api
from seqgen.engine.model import Model
from seqgen.errors import CheckpointError, ConfigError
from seqgen.options import TrainOptions
from seqgen.storage import checkpoint
from seqgen.training.average import WeightAverage
from seqgen.training.data import evaluation_windows, split_validation
from seqgen.training.trainer import mean_loss


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    return path


def reference_average(snapshots, decay):
    """The average of the weights after each step, in float64: a0 = w0, a_t = d_t a_{t-1} + (1 - d_t) w_t."""
    avg = {k: v.astype(np.float64) for k, v in snapshots[0].items()}
    for t, weights in enumerate(snapshots[1:], 1):
        d = min(decay, (1 + t) / (10 + t))
        avg = {k: d * avg[k] + (1 - d) * weights[k] for k in avg}
    return avg


def test_the_average_weighs_steps_as_tensorflows_moving_average():
    rng = np.random.default_rng(0)
    params = {"W": np.asfortranarray(rng.standard_normal((3, 5))), "b": rng.standard_normal(5)}
    average = WeightAverage(params, 0.5)
    snapshots = [{k: v.copy() for k, v in params.items()}]
    for t in range(1, 8):  # early steps follow (1 + t) / (10 + t) < 0.5, later ones the decay
        for p in params.values():
            p += rng.standard_normal(p.shape)
        average.update(params, t)
        snapshots.append({k: v.copy() for k, v in params.items()})
    for name, value in reference_average(snapshots, 0.5).items():
        np.testing.assert_allclose(average.weights[name], value, rtol=1e-13, atol=1e-13, err_msg=name)
    assert average.weights["W"].flags.f_contiguous  # the layout the kernels read, as the model's


def test_a_run_evaluates_and_saves_the_average_and_keeps_its_own_weights(tmp_path, text_file, monkeypatch):
    options = TrainOptions.parse(dict(corpus=text_file, hidden_size=8, layers=2, dropout=0.2, seq_length=8,
                                      batch_size=4, steps=12, eval_every=6, ema=0.6, dtype="float64",
                                      output=tmp_path / "m.npz"))
    snapshots = []  # the optimiser's weights: initial, then after every step
    start = WeightAverage.__init__

    def recording_start(self, params, decay):
        start(self, params, decay)
        snapshots.append({k: v.copy() for k, v in params.items()})

    monkeypatch.setattr(WeightAverage, "__init__", recording_start)

    class Record(api.TrainEvents):
        def on_step(self, trainer, loss, tokens):
            snapshots.append({k: v.copy() for k, v in trainer.model.params.items()})

    api.train(options, Record())
    saved = checkpoint.load(tmp_path / "m.npz")
    assert len(snapshots) == 13
    # the checkpoint's model is the average of the optimiser's weights after every step
    for name, value in reference_average(snapshots, 0.6).items():
        np.testing.assert_allclose(saved.model.params[name], value, rtol=1e-10, atol=1e-12, err_msg=name)
    # and the optimiser's own weights are kept for resuming
    for name, value in snapshots[-1].items():
        np.testing.assert_array_equal(saved.arrays[f"train/weights/{name}"], value, err_msg=name)

    # the recorded validation losses are those of the average and of the optimiser's weights
    tok = saved.tokenizer
    ids = np.concatenate([tok.encode(x) for x in tok.read(text_file)])
    valid = split_validation(ids, tok.separator_id, "stream", options.valid_fraction)[1]
    raw = Model(saved.model.config, {k: saved.arrays[f"train/weights/{k}"] for k in saved.model.params})
    last = saved.training["history"][-1]
    for model, recorded in ((saved.model, last["valid_loss"]), (raw, last["valid_loss_raw"])):
        windows = evaluation_windows("stream", valid, tok.separator_id, 4, 8).iter_windows()
        assert recorded == pytest.approx(mean_loss(model, windows), rel=1e-12)
    assert last["valid_loss"] != last["valid_loss_raw"]


def test_averaging_off_saves_no_extra_arrays_and_no_raw_loss(tmp_path, text_file):
    api.train(TrainOptions.parse(dict(corpus=text_file, hidden_size=8, seq_length=8, batch_size=4, steps=4,
                                      eval_every=2, output=tmp_path / "m.npz")))
    saved = checkpoint.load(tmp_path / "m.npz")
    assert not [k for k in saved.arrays if k.startswith("train/weights/")]
    assert "valid_loss_raw" not in saved.training["history"][-1]


def test_resume_continues_from_the_optimisers_weights_exactly(tmp_path, text_file):
    settings = dict(corpus=text_file, hidden_size=8, layers=2, dropout=0.2, seq_length=8, batch_size=4,
                    steps=10, eval_every=5, ema=0.9)
    api.train(TrainOptions.parse(dict(settings, output=tmp_path / "whole.npz")))

    class StopAt4(api.TrainEvents):
        def on_step(self, trainer, loss, tokens):
            trainer._interrupted = trainer.step == 4  # what Ctrl-C does

    api.train(TrainOptions.parse(dict(settings, output=tmp_path / "part.npz")), StopAt4())
    api.resume(tmp_path / "part.npz")
    whole, part = checkpoint.load(tmp_path / "whole.npz"), checkpoint.load(tmp_path / "part.npz")
    for name, value in whole.model.params.items():
        np.testing.assert_array_equal(part.model.params[name], value, err_msg=name)
        np.testing.assert_array_equal(part.arrays[f"train/weights/{name}"], whole.arrays[f"train/weights/{name}"])
    with pytest.raises(ConfigError, match="ema: cannot change when resuming"):
        api.resume(tmp_path / "part.npz", {"ema": 0.5, "steps": 12})


@pytest.mark.parametrize("value", ["1", "-0.1", "x"])
def test_a_bad_decay_is_one_line_naming_the_flag(cli_run, tmp_path, text_file, value):
    r = cli_run("train", text_file, "--ema", value, "-o", tmp_path / "m.npz")
    assert r.exit_code != 0 and "--ema" in r.output and "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "--ema" in errors[0]
    assert not (tmp_path / "m.npz").exists()


def test_a_checkpoint_missing_the_optimisers_weights_is_refused(tmp_path, text_file):
    api.train(TrainOptions.parse(dict(corpus=text_file, hidden_size=8, seq_length=8, batch_size=4, steps=2,
                                      eval_every=2, ema=0.9, output=tmp_path / "m.npz")))
    saved = checkpoint.load(tmp_path / "m.npz")
    arrays = {k: v for k, v in saved.arrays.items() if not k.startswith("train/weights/")}
    checkpoint.save(tmp_path / "cut.npz", saved.model, saved.tokenizer, saved.training, arrays)
    with pytest.raises(CheckpointError, match="missing array 'train/weights/|bytes of arrays"):
        checkpoint.load(tmp_path / "cut.npz")
