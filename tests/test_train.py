import json
import os
import signal

import numpy as np
import pytest

from seqgen import TrainingError
from seqgen.storage import checkpoint

NAMES = ("aardonyx abelisaurus achelousaurus achillobator acrocanthosaurus adamantisaurus "
         "aegyptosaurus aeolosaurus afrovenator agilisaurus alamosaurus albertosaurus allosaurus "
         "alvarezsaurus amargasaurus ampelosaurus anchisaurus ankylosaurus apatosaurus archaeopteryx "
         "argentinosaurus bagaceratops barosaurus baryonyx brachiosaurus camarasaurus carnotaurus").split()


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(n.capitalize() for n in NAMES * 4))
    return path


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    words = [NAMES[(i * 7) % len(NAMES)] for i in range(900)]
    path.write_text(" ".join(words) + "\n")
    return path


def params_of(path):
    return checkpoint.load(path).model.params


def assert_same_params(a, b):
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


STREAM = ["--cell", "lstm", "--hidden-size", "16", "--layers", "2", "--dropout", "0.3", "--seq-length", "8",
          "--batch-size", "4", "--eval-every", "5", "-q"]
ITEMS = ["--mode", "items", "--cell", "gru", "--hidden-size", "12", "--batch-size", "3", "--seq-length", "6",
         "--eval-every", "4", "-O", "lower", "true", "-q"]


# every regulariser and schedule option that keeps state or draws random numbers
REGULARISED = STREAM + ["--dropout-output", "0.2", "--dropout-masks", "sequence", "--weight-decay", "0.1",
                        "--warmup", "4", "--decay", "0.9", "--decay-every", "5", "--ema", "0.9"]


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "rmsprop", "adam"])
@pytest.mark.parametrize("args, corpus", [(STREAM, "text_file"), (ITEMS, "names_file"), (REGULARISED, "text_file")])
def test_resume_is_bit_identical(cli_run, tmp_path, request, args, corpus, optimizer):
    corpus = request.getfixturevalue(corpus)
    extra = ["--optimizer", optimizer] + (["--momentum", "0.9"] if optimizer == "sgd" else [])
    one = cli_run("train", corpus, *args, *extra, "--steps", "26", "-o", tmp_path / "one.npz")
    assert one.exit_code == 0, one.output
    half = cli_run("train", corpus, *args, *extra, "--steps", "13", "-o", tmp_path / "two.npz")
    assert half.exit_code == 0, half.output
    assert checkpoint.load(tmp_path / "two.npz").training["step"] == 13
    rest = cli_run("train", "--resume", tmp_path / "two.npz", "--steps", "26", "-q")
    assert rest.exit_code == 0, rest.output
    assert_same_params(params_of(tmp_path / "one.npz"), params_of(tmp_path / "two.npz"))
    assert checkpoint.load(tmp_path / "two.npz").training["step"] == 26


def test_training_lowers_the_loss_and_keeps_the_best(cli_run, tmp_path, text_file):
    log = tmp_path / "log.jsonl"
    r = cli_run("train", text_file, "--cell", "gru", "--hidden-size", "32", "--seq-length", "16",
                "--batch-size", "8", "--steps", "60", "--eval-every", "20", "-o", tmp_path / "m.npz", "--log", log)
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [rec["step"] for rec in records] == [20, 40, 60]
    assert records[-1]["valid_loss"] < records[0]["valid_loss"] < np.log(27)
    best = checkpoint.load(tmp_path / "m.best.npz")
    assert best.training["best_valid"] == min(rec["valid_loss"] for rec in records)
    info = cli_run("info", tmp_path / "m.npz")
    assert info.exit_code == 0 and "gru, 1 layer(s) of 32" in info.output and "step 60" in info.output
    ev = cli_run("eval", tmp_path / "m.npz", text_file)
    assert ev.exit_code == 0 and "perplexity" in ev.output and "bits per token" in ev.output


def test_dinosaurus_recipe_short_run_loss_falls(cli_run, tmp_path, names_file):
    """The notes' recipe (tanh RNN, 50 units, SGD 0.01, clip 5, one name per step), shortened."""
    log = tmp_path / "log.jsonl"
    r = cli_run("train", names_file, "-O", "lower", "true", "--mode", "items", "--cell", "rnn", "--hidden-size", "50",
                "--optimizer", "sgd", "--lr", "0.01", "--clip-value", "5", "--reduction", "sum", "--batch-size", "1",
                "--init", "small", "--steps", "1500", "--valid-fraction", "0", "--eval-every", "300",
                "-o", tmp_path / "d.npz", "--log", log, "-q")
    assert r.exit_code == 0, r.output
    smoothed = [json.loads(line)["train_loss"] for line in log.read_text().splitlines()]
    assert smoothed[-1] < smoothed[0] * 0.9


def test_ctrl_c_saves_and_resume_continues(tmp_path, text_file):
    from seqgen.engine.model import Model
    from seqgen.options import TrainOptions
    from seqgen.training.data import make_windows
    from seqgen.training.trainer import Trainer
    from seqgen_plugins.chars import CharTokenizer

    tok = CharTokenizer()
    docs = tok.read(text_file)
    tok.fit(docs)
    ids = tok.encode(docs[0])
    opts = TrainOptions(batch_size=4, seq_length=8, steps=30, eval_every=100, output=tmp_path / "m.npz")
    windows = make_windows("stream", ids, None, 4, 8)
    trainer = Trainer(Model.create("rnn", len(tok.vocab), 8), tok, windows, None, opts)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job

    def interrupt(t, loss, tokens):
        if t.step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    assert trainer.run(on_step=interrupt) == "interrupted"
    assert checkpoint.load(tmp_path / "m.npz").training["step"] == 7
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C handling restored


def test_ctrl_c_from_the_cli_saves_and_exits_130_with_resume_hint(cli_run, tmp_path, text_file, monkeypatch):
    from seqgen.training.trainer import Trainer

    original = Trainer._train_step

    def step_then_interrupt(self):
        result = original(self)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(Trainer, "_train_step", step_then_interrupt)
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4",
                "--steps", "50", "-o", tmp_path / "m.npz")
    assert r.exit_code == 130, r.output
    assert "interrupted at step 3" in r.output and "seqgen train --resume" in r.output
    assert checkpoint.load(tmp_path / "m.npz").training["step"] == 3


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(cli_run, tmp_path, text_file, monkeypatch):
    from seqgen.training.trainer import Trainer

    original = Trainer._train_step

    def poison(self):
        if self.step == 6:
            self.model.params["by"][0] = np.nan
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", poison)
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4",
                "--steps", "20", "--eval-every", "5", "-o", tmp_path / "m.npz", "-q")
    assert r.exit_code == 1
    assert "loss became nan at step 7" in r.output and "step 5" in r.output
    assert "Traceback" not in r.output
    ckpt = checkpoint.load(tmp_path / "m.npz")
    assert ckpt.training["step"] == 5 and np.isfinite(ckpt.model.params["by"]).all()


def test_trainer_raises_training_error_directly(tmp_path, text_file):
    from seqgen.engine.model import Model
    from seqgen.options import TrainOptions
    from seqgen.training.data import make_windows
    from seqgen.training.trainer import Trainer
    from seqgen_plugins.chars import CharTokenizer

    tok = CharTokenizer()
    tok.fit(tok.read(text_file))
    ids = tok.encode(tok.read(text_file)[0])
    model = Model.create("rnn", len(tok.vocab), 8)
    model.params["l0.Waa"][0, 0] = np.inf
    trainer = Trainer(model, tok, make_windows("stream", ids, None, 2, 8), None,
                      TrainOptions(steps=3, output=tmp_path / "m.npz"))
    with pytest.raises(TrainingError, match="no checkpoint was written"):
        trainer.run()
    assert not (tmp_path / "m.npz").exists()


def test_config_file_supplies_options_and_command_line_wins(cli_run, tmp_path, text_file):
    config = tmp_path / "train.toml"
    config.write_text('cell = "gru"\nhidden-size = 10\nsteps = 3\nseq_length = 8\nbatch-size = 4\n'
                      'quiet = true\n[option]\nlower = true\n')
    r = cli_run("train", text_file, "--config", config, "--hidden-size", "6", "-o", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(tmp_path / "m.npz")
    assert ckpt.model.config.cell == "gru" and ckpt.model.config.hidden_size == 6
    assert ckpt.training["step"] == 3 and ckpt.tokenizer.config["lower"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 3\n")
    r = cli_run("train", text_file, "--config", bad)
    assert r.exit_code == 2 and "bad.toml: colour: unknown setting" in r.output


def test_early_stopping(cli_run, tmp_path, text_file):
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4", "--steps", "400",
                "--eval-every", "1", "--patience", "2", "--lr", "0.5", "--optimizer", "sgd", "-o", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "stopped early" in r.output
    assert checkpoint.load(tmp_path / "m.npz").training["step"] < 400


@pytest.mark.parametrize(
    "content, args, message",
    [
        (b"", [], "empty"),
        (b"\x00\x01\x02binary", [], "binary"),
        (b"abc", [], "too short for one window"),
        (b"aaaaaaaaaaaa", ["-O", "separator", ""], "one-token vocabulary"),
        (b"justone", ["--mode", "items"], "corpus.txt has 1 item(s): too few to hold out 10% for validation"),
    ],
)
def test_bad_corpora_give_one_line(cli_run, tmp_path, content, args, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    r = cli_run("train", corpus, "-q", "-o", tmp_path / "m.npz", *args)
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()


def test_resume_from_a_corrupt_checkpoint(cli_run, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = cli_run("train", "--resume", bad)
    assert r.exit_code == 1 and "bad.npz" in r.output and "Traceback" not in r.output


def test_time_limit_stops_and_saves(cli_run, tmp_path, text_file):
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4",
                "--steps", "100000", "--max-minutes", "0.005", "-o", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "time limit reached" in r.output
    ckpt = checkpoint.load(tmp_path / "m.npz")
    assert 0 < ckpt.training["step"] < 100000 and 0.1 < ckpt.training["elapsed"] < 30


def test_export_keeps_weights_and_history_but_not_training_state(cli_run, tmp_path, text_file):
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4", "--steps", "10",
                "--eval-every", "5", "-o", tmp_path / "m.npz", "-q")
    assert r.exit_code == 0, r.output
    r = cli_run("export", tmp_path / "m.npz", tmp_path / "small.npz")
    assert r.exit_code == 0, r.output
    full, small = checkpoint.load(tmp_path / "m.npz"), checkpoint.load(tmp_path / "small.npz")
    assert_same_params(full.model.params, small.model.params)
    assert small.training is None and small.arrays == {}
    assert small.summary["step"] == 10 and len(small.summary["history"]) == 2
    assert (tmp_path / "small.npz").stat().st_size < (tmp_path / "m.npz").stat().st_size
    info = cli_run("info", tmp_path / "small.npz")
    assert "weights only" in info.output and "step 10" in info.output
    resume = cli_run("train", "--resume", tmp_path / "small.npz")
    assert resume.exit_code == 1 and "cannot be resumed" in resume.output


def test_separate_validation_file_shares_the_vocabulary(cli_run, tmp_path, text_file):
    valid = tmp_path / "valid.txt"
    valid.write_text("zyx quux, " * 40)
    r = cli_run("train", text_file, "--valid", valid, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4",
                "--steps", "4", "-o", tmp_path / "m.npz", "-q")
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(tmp_path / "m.npz")
    assert {"z", "q", ","} <= set(ckpt.tokenizer.vocab)
    assert ckpt.training["best_valid"] is not None
    other = tmp_path / "other.txt"
    other.write_text("1234 " * 100)
    ev = cli_run("eval", tmp_path / "m.npz", other)
    assert ev.exit_code == 1 and "other.txt" in ev.output and "'1'" in ev.output


def test_samples_are_printed_during_training_and_progress_shows_rate(cli_run, tmp_path, text_file):
    r = cli_run("train", text_file, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4", "--steps", "6",
                "--sample-every", "3", "--sample-length", "20", "-o", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert r.output.count("--- sample at step") == 2
    assert "--- sample at step 3 ---" in r.output and "--- sample at step 6 ---" in r.output
    assert "training" in r.output and "loss" in r.output
