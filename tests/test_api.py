"""The library API under the CLI (seqgen.api, seqgen.options), and the issue-9 defects of the
training and inspection front ends: each test here failed before its fix."""

import json
import os

import numpy as np
import pytest

from seqgen import api
from seqgen.errors import ConfigError, CorpusError, ShapeError
from seqgen.options import EvalOptions, TrainOptions
from seqgen.storage import checkpoint


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    return path


def small(tmp_path, corpus, **changes):
    settings = dict(corpus=corpus, hidden_size=8, seq_length=8, batch_size=4, steps=6, eval_every=3,
                    output=tmp_path / "m.npz")
    settings.update(changes)
    return TrainOptions.parse(settings)


# ---------------------------------------------------------------------------------- options
def test_options_name_every_bad_field_once():
    with pytest.raises(ConfigError) as e:
        TrainOptions.parse({"hidden_size": [1, 2], "cell": "foo", "lr": -1, "colour": 3}, source="t.toml")
    message = str(e.value)
    assert message.startswith("t.toml: ")
    for part in ("hidden_size:", "cell: unknown cell 'foo'", "lr:", "colour: unknown setting"):
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize("field, value", [("hidden_size", 9223372036854775807), ("layers", 10**20),
                                          ("seq_length", 0), ("dropout", 1.0), ("output", ""),
                                          ("seed", -1), ("lr", float("inf"))])
def test_out_of_range_settings_are_refused_before_anything_is_allocated(field, value):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        TrainOptions.parse({field: value})


def test_library_errors_name_options_and_the_cli_names_flags(tmp_path, cli_run):
    short = tmp_path / "short.txt"
    short.write_text("abcdefgh" * 3)
    with pytest.raises(CorpusError) as e:
        api.train(small(tmp_path, short, batch_size=8))
    assert "lower batch_size or seq_length" in str(e.value) and "--" not in str(e.value)
    r = cli_run("train", short, "--batch-size", "8", "-o", tmp_path / "m.npz", "-q")
    assert r.exit_code == 1 and "lower --batch-size or --seq-length" in r.output


# ---------------------------------------------------------------------------------- training
def test_train_and_evaluate_through_the_api(tmp_path, text_file):
    result = api.train(small(tmp_path, text_file))
    assert result.reason == "done" and result.step == 6 and result.output.exists()
    assert result.best_valid is not None and result.best_output.exists()
    ev = api.evaluate(EvalOptions(model=str(result.output), corpus=text_file))
    assert ev.tokens > 0 and ev.perplexity == pytest.approx(np.exp(ev.loss))


def test_logged_train_loss_is_the_per_token_mean_since_the_last_evaluation(tmp_path, text_file):
    """It was a 0.999 moving average (stuck near the first losses for short runs) and, with
    reduction sum, a per-item sum shown beside a per-token validation loss."""
    seen = []

    class Record(api.TrainEvents):
        def on_step(self, trainer, loss, tokens):
            seen.append((loss, tokens))

    log = tmp_path / "log.jsonl"
    api.train(small(tmp_path, text_file, reduction="sum", log=log), Record())
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    for record, chunk in zip(records, (seen[:3], seen[3:])):
        mean = sum(loss * n for loss, n in chunk) / sum(n for _, n in chunk)
        assert record["train_loss"] == pytest.approx(mean, rel=1e-12)
        assert record["train_loss"] < 2 * np.log(30)  # per token, not summed over a window


def test_evaluation_streams_validation_windows_instead_of_keeping_them(tmp_path, text_file, monkeypatch):
    from seqgen.training.data import StreamWindows

    calls = []
    original = StreamWindows.iter_windows

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(StreamWindows, "iter_windows", counting)
    api.train(small(tmp_path, text_file, valid_fraction=0.2))
    assert len(calls) == 2  # once per evaluation: nothing materialised for the whole run


def test_resume_refuses_changed_settings_instead_of_dropping_them(tmp_path, text_file, cli_run):
    api.train(small(tmp_path, text_file))
    with pytest.raises(ConfigError, match="lr: cannot change when resuming"):
        api.resume(tmp_path / "m.npz", {"lr": 0.5, "steps": 9})
    result = api.resume(tmp_path / "m.npz", {"steps": 9, "eval_every": 9})
    assert result.step == 9
    assert checkpoint.load(tmp_path / "m.npz").training["options"]["eval_every"] == 9
    r = cli_run("train", "--resume", tmp_path / "m.npz", "--hidden-size", "16", "--steps", "12")
    assert r.exit_code == 1 and "--hidden-size: cannot change when resuming" in r.output


def test_a_cosine_run_resumes_exactly_but_keeps_its_length(tmp_path, text_file):
    """The cosine schedule decays over the run's steps: an interrupted run resumes bit for bit;
    changing its length would change every later learning rate, so that is refused."""
    settings = dict(layers=2, dropout=0.2, dropout_output=0.3, dropout_masks="sequence", weight_decay=0.1,
                    schedule="cosine", warmup=3, min_lr=1e-4, steps=12)
    api.train(small(tmp_path, text_file, **settings))
    whole = checkpoint.load(tmp_path / "m.npz")
    class StopAt5(api.TrainEvents):
        def on_step(self, trainer, loss, tokens):
            trainer._interrupted = trainer.step == 5  # what Ctrl-C does

    api.train(small(tmp_path, text_file, output=tmp_path / "part.npz", **settings), StopAt5())
    assert checkpoint.load(tmp_path / "part.npz").training["step"] == 5
    with pytest.raises(ConfigError, match="steps: cannot change when resuming"):
        api.resume(tmp_path / "part.npz", {"steps": 20})
    api.resume(tmp_path / "part.npz")
    resumed = checkpoint.load(tmp_path / "part.npz")
    for name, value in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value, err_msg=name)
    losses = [[(r["step"], r["valid_loss"], r["grad_norm"]) for r in c.training["history"]] for c in (whole, resumed)]
    assert losses[0] == losses[1]


def test_evaluations_log_the_gradient_norm_before_clipping(tmp_path, text_file):
    api.train(small(tmp_path, text_file, clip_norm=1e-3, steps=8, eval_every=4))
    history = checkpoint.load(tmp_path / "m.npz").training["history"]
    assert len(history) == 2
    for record in history:  # far above the clipping threshold: the norm is taken before clipping
        assert 1e-3 < record["grad_norm"] <= record["grad_norm_max"]


def test_outputs_are_checked_before_any_training(tmp_path, text_file, cli_run, monkeypatch):
    from seqgen.training.trainer import Trainer

    monkeypatch.setattr(Trainer, "run", lambda *a, **k: pytest.fail("trained despite an unusable output"))
    for output, message in [(tmp_path / "no" / "m.npz", "does not exist"), (tmp_path, "is a folder"),
                            (text_file / "m.npz", "is not a folder")]:
        with pytest.raises(ConfigError, match=message):
            api.train(small(tmp_path, text_file, output=output))
    r = cli_run("train", text_file, "--log", tmp_path / "missing" / "log.jsonl", "-o", tmp_path / "m.npz")
    assert r.exit_code == 1 and "--log" in r.output and "Traceback" not in r.output


def test_a_diverging_run_stops_and_never_saves_non_finite_weights(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["aardonyx", "abelisaurus", "achelousaurus", "allosaurus", "baryonyx"] * 8))
    options = TrainOptions.parse(dict(corpus=names, tokenizer_options={"lower": True}, mode="items", batch_size=8,
                                      cell="lstm", lr=1e39, clip_value=0, eval_every=1, hidden_size=32, steps=50,
                                      output=tmp_path / "m.npz"))
    from seqgen.errors import TrainingError

    with pytest.raises(TrainingError, match="diverged|non-finite|nan|inf"):
        api.train(options)
    if (tmp_path / "m.npz").exists():
        ckpt = checkpoint.load(tmp_path / "m.npz")
        assert all(np.isfinite(p).all() for p in ckpt.model.params.values())


# ---------------------------------------------------------------------------------- inspection
@pytest.mark.parametrize("command", [["info", "dinos"], ["eval", "dinos", "CORPUS"], ["export", "dinos", "OUT"]])
def test_shipped_model_names_work_in_every_command(cli_run, tmp_path, command):
    names = tmp_path / "names.txt"
    names.write_text("tyrannosaurus\ntriceratops\nstegosaurus\n")
    args = [str(names) if a == "CORPUS" else str(tmp_path / "d.npz") if a == "OUT" else a for a in command]
    r = cli_run(*args)
    assert r.exit_code == 0, r.output
    if command[0] == "export":
        assert checkpoint.load(tmp_path / "d.npz").training is None


def test_export_refuses_to_overwrite_unless_forced(cli_run, tmp_path):
    out = tmp_path / "d.npz"
    out.write_bytes(b"keep me")
    r = cli_run("export", "dinos", out)
    assert r.exit_code == 1 and "exists" in r.output and out.read_bytes() == b"keep me"
    assert cli_run("export", "dinos", out, "--force").exit_code == 0


def test_info_shows_units_and_labels_the_training_loss(cli_run):
    r = cli_run("info", "dinos")
    assert r.exit_code == 0, r.output
    assert "best validation loss" in r.output and "nats/token" in r.output
    assert "21." not in r.output  # the summed-per-item smoothed loss of the notes is not shown as a loss


# ---------------------------------------------------------------------------------- threads and optimiser
@pytest.mark.parametrize("command", [["models"], ["info", "dinos"], ["plugins"]])
def test_threads_is_accepted_by_every_command(cli_run, command):
    r = cli_run(*command, "--threads", "1")
    assert r.exit_code == 0, r.output


def test_threads_caps_the_blas_the_kernels_use():
    from threadpoolctl import threadpool_info

    from seqgen.threads import limit_threads

    limit_threads(1)
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)


def test_optimizer_refuses_non_contiguous_parameters_and_wrong_gradients():
    from seqgen.training.optim import Optimizer

    base = np.zeros((4, 6))
    params = {"W": base[:, ::2]}  # a strided view: ravel would copy it and lose the update
    opt = Optimizer("sgd", {"W": np.zeros((4, 3))}, lr=0.1)
    with pytest.raises(ShapeError, match="not contiguous"):
        opt.step(params, {"W": np.ones((4, 3))})
    with pytest.raises(ShapeError, match="gradient W"):
        opt.step({"W": np.zeros((4, 3))}, {"W": np.ones(5)})


def test_optimizer_updates_f_ordered_parameters_with_c_ordered_gradients_elementwise():
    from seqgen.training.optim import Optimizer

    p = np.asfortranarray(np.zeros((3, 4)))
    g = np.arange(12, dtype=float).reshape(3, 4)  # C order: a different memory layout
    Optimizer("sgd", {"W": p}, lr=1.0).step({"W": p}, {"W": g})
    np.testing.assert_array_equal(p, -g)


def test_threads_env_is_checked(cli_run, monkeypatch):
    monkeypatch.setitem(os.environ, "SEQGEN_THREADS", "lots")
    r = cli_run("models")
    assert r.exit_code == 2 and "SEQGEN_THREADS" in r.output


def test_version_comes_from_the_distribution_metadata(cli_run):
    from importlib.metadata import version

    import seqgen

    assert seqgen.__version__ == version("seqgen")
    assert version("seqgen") in cli_run("--version").output


def test_training_takes_the_output_lock_and_clears_stale_temporaries(tmp_path, text_file):
    from seqgen.storage.checkpoint import output_lock

    stale = tmp_path / ".m.npz.abcd1234.tmp"  # what a run killed mid-save leaves behind
    stale.write_bytes(b"half a checkpoint")
    api.train(small(tmp_path, text_file))
    assert not stale.exists() and (tmp_path / "m.npz").exists()
    with output_lock(tmp_path / "m.npz"):  # another training writing here: refused, file kept
        with pytest.raises(Exception, match="m.npz"):
            api.train(small(tmp_path, text_file, steps=3))
    assert checkpoint.load(tmp_path / "m.npz").training["step"] == 6


def test_info_shows_the_task_labels_and_direction(tmp_path, cli_run):
    corpus = tmp_path / "tags.txt"
    corpus.write_text("".join(f"the\tO\ncat\tB-X\nsat\tO\n{'dog' if i % 2 else 'cat'}\tB-X\n\n" for i in range(40)))
    r = cli_run("train", corpus, "-t", "conll", "--task", "tag", "--bidirectional", "--mode", "items", "--cell", "gru",
                "--hidden-size", "8", "--steps", "2", "--batch-size", "4", "--valid-fraction", "0",
                "-o", tmp_path / "t.npz", "-q")
    assert r.exit_code == 0, r.output
    info = cli_run("info", tmp_path / "t.npz")
    assert info.exit_code == 0, info.output
    assert "bidirectional" in info.output and "task: tag" in info.output and "B-X" in info.output
    assert "task: language model" in cli_run("info", "dinos").output


def test_training_streams_are_spawned_from_the_one_seed():
    """They were magic keys ([seed, 1], [seed, epoch], [seed, 2**31 - 1]) that could collide;
    now each is a SeedSequence child of the run's seed."""
    import numpy as np

    from seqgen.training import seeds

    children = np.random.SeedSequence(7).spawn(len(seeds.STREAMS))
    for i, name in enumerate(seeds.STREAMS):
        expected = np.random.default_rng(children[i]).random(4)
        np.testing.assert_array_equal(seeds.generator(7, name).random(4), expected)
    epoch3 = np.random.default_rng(children[seeds.STREAMS.index("shuffle")].spawn(4)[3]).random(4)
    np.testing.assert_array_equal(seeds.generator(7, "shuffle", 3).random(4), epoch3)
    assert not np.array_equal(seeds.generator(7, "dropout").random(4), seeds.generator(8, "dropout").random(4))


# ---------------------------------------------------------------------------------- review fixes
def test_a_new_run_does_not_overwrite_a_checkpoint_unless_forced(tmp_path, text_file, cli_run):
    api.train(small(tmp_path, text_file))
    before = (tmp_path / "m.npz").read_bytes()
    with pytest.raises(ConfigError, match="exists"):
        api.train(small(tmp_path, text_file, hidden_size=4))
    assert (tmp_path / "m.npz").read_bytes() == before
    r = cli_run("train", text_file, "--hidden-size", "4", "--seq-length", "8", "--batch-size", "4", "--steps", "2",
                "-o", tmp_path / "m.npz", "-q")
    assert r.exit_code == 1 and "--resume" in r.output and "--force" in r.output
    assert (tmp_path / "m.npz").read_bytes() == before
    assert api.train(small(tmp_path, text_file, hidden_size=4, force=True)).output.exists()
    assert checkpoint.load(tmp_path / "m.npz").model.config.hidden_size == 4


def test_resuming_into_a_new_file_writes_it_and_its_best(tmp_path, text_file):
    api.train(small(tmp_path, text_file))
    result = api.resume(tmp_path / "m.npz", {"output": str(tmp_path / "m2.npz")})  # no steps left to run
    assert result.step == 6 and (tmp_path / "m2.npz").exists() and (tmp_path / "m2.best.npz").exists()
    assert checkpoint.load(tmp_path / "m2.npz").training["step"] == 6


def test_resume_compares_what_is_in_effect(tmp_path, text_file):
    api.train(small(tmp_path, text_file, tokenizer_options={"lower": True}))
    # the same tokenizer option again, and the optimiser's default learning rate said out loud
    result = api.resume(tmp_path / "m.npz", {"tokenizer_options": {"lower": True}, "lr": 0.002, "steps": 8})
    assert result.step == 8
    with pytest.raises(ConfigError, match="tokenizer_options"):
        api.resume(tmp_path / "m.npz", {"tokenizer_options": {"lower": False}, "steps": 9})


def test_max_minutes_counts_this_session_not_earlier_ones(tmp_path, text_file):
    """A resumed run starts with the time of its earlier sessions (elapsed); a time limit
    counted from there stopped it at once."""
    from seqgen.engine.model import Model
    from seqgen.training.data import make_windows
    from seqgen.training.trainer import Trainer
    from seqgen_plugins.chars import CharTokenizer

    tok = CharTokenizer()
    tok.fit(tok.read(text_file))
    ids = tok.encode(tok.read(text_file)[0])
    trainer = Trainer(Model.create("rnn", len(tok.vocab), 8), tok, make_windows("stream", ids, None, 4, 8), None,
                      TrainOptions(steps=4, eval_every=4, output=tmp_path / "m.npz"))
    trainer.elapsed = 3600.0  # an hour of earlier sessions
    assert trainer.run(max_seconds=600) == "done" and trainer.step == 4
    assert trainer.elapsed > 3600  # the total is still reported


@pytest.mark.parametrize("settings, message", [({"optimizer": "adam", "momentum": 0.9}, "momentum"),
                                                ({"pooling": "mean"}, "pooling"),
                                                ({"task": "tag", "sample_every": 5}, "sample_every"),
                                                ({"schedule": "cosine", "decay": 0.9}, "decay"),
                                                ({"min_lr": 1e-4}, "min_lr"),
                                                ({"dropout": 0.2}, "dropout"),
                                                ({"layers": 2, "dropout_masks": "sequence"}, "dropout_masks")])
def test_settings_the_run_would_ignore_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainOptions.parse(settings)


def test_sample_checks_its_output_before_sampling_and_refuses_stop_with_no_stop(cli_run, tmp_path):
    r = cli_run("sample", "--model", "dinos", "-o", tmp_path / "missing" / "s.txt", "--seed", "1")
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    r = cli_run("sample", "--model", "dinos", "--stop", "x", "--no-stop")
    assert r.exit_code == 2 and "not both" in r.output


def test_a_config_quiet_must_be_a_boolean(cli_run, tmp_path, text_file):
    config = tmp_path / "c.toml"
    config.write_text('quiet = "false"\n')
    r = cli_run("train", text_file, "--config", config)
    assert r.exit_code == 2 and "quiet: must be true or false" in r.output


def test_option_names_quoted_in_a_message_are_written_as_flags(cli_run, text_file, tmp_path):
    r = cli_run("train", text_file, "--dropout", "0.2", "-o", tmp_path / "m.npz")
    assert r.exit_code != 0
    assert "Error: --dropout: acts between stacked layers; with one layer use --dropout-output" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "m.npz").exists()
