"""The models shipped in seqgen/models/: listed, loadable, usable, and reproducible from their recipes."""

import shlex
from pathlib import Path

import mido
import pytest

import seqgen
from seqgen.storage import checkpoint, shipped

ROOT = Path(__file__).resolve().parent.parent


def test_catalog_lists_the_four_default_models():
    assert set(shipped.names()) == {"shakespeare", "dinos", "chorale", "chorale-satb"}
    assert shipped.DEFAULT_TEXT_MODEL in shipped.names()
    total = sum(shipped.path(name).stat().st_size for name in shipped.names())
    assert total < 5_000_000  # "a few MB at most together"


@pytest.mark.parametrize("name", ["shakespeare", "dinos", "chorale", "chorale-satb"])
def test_each_shipped_model_loads_and_samples(name, tmp_path, cli_run):
    ckpt = checkpoint.load(shipped.path(name))
    entry = shipped.catalog()[name]
    assert ckpt.training is None and ckpt.summary["best_valid"] == pytest.approx(entry["valid_loss"])
    if ckpt.tokenizer.output == "midi":
        r = cli_run("sample", "--model", name, "-n", "2", "-o", tmp_path, "--length", "64", "--seed", "0")
        assert r.exit_code == 0, r.output
        for path in sorted(tmp_path.glob("*.mid")):
            assert sum(m.type == "note_on" for t in mido.MidiFile(path).tracks for m in t) > 0
    else:
        [s] = seqgen.sample(name, n=1, length=50, seed=0)
        assert s.text and s.logp < 0


def test_default_sample_uses_the_text_model(cli_run):
    r = cli_run("sample", "--length", "40", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert r.output == cli_run("sample", "--model", "shakespeare", "--length", "40", "--seed", "1").output


def test_models_command_lists_them(cli_run):
    r = cli_run("models")
    assert r.exit_code == 0
    assert "shakespeare (default)" in r.output and "chorale-satb" in r.output and "validation loss" in r.output


def test_the_dinos_recipe_reproduces_its_recorded_validation_loss(tmp_path, cli_run, monkeypatch):
    entry = shipped.catalog()["dinos"]
    args = shlex.split(entry["recipe"])
    assert args[:2] == ["seqgen", "train"]
    args[args.index("-o") + 1] = str(tmp_path / "dinos.npz")
    monkeypatch.chdir(ROOT)
    r = cli_run(*args[1:], "-q")
    assert r.exit_code == 0, r.output
    best = checkpoint.load(tmp_path / "dinos.best.npz")
    assert best.training["best_valid"] == pytest.approx(entry["valid_loss"], rel=1e-4)
