"""`seqgen sample` and the Python API behind it (seqgen.sample)."""

import json

import mido
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import build_midi

import seqgen
from seqgen.cli import cli
from seqgen.engine.model import Model
from seqgen.generation.samples import draw, stream_text
from seqgen.options import SampleOptions, TrainOptions
from seqgen.plugins.host import get_tokenizer
from seqgen.storage import checkpoint
from seqgen.training.data import make_windows
from seqgen.training.trainer import Trainer

NAMES = ("aardonyx abelisaurus achelousaurus achillobator acrocanthosaurus adamantisaurus aegyptosaurus "
         "aeolosaurus afrovenator agilisaurus alamosaurus albertosaurus allosaurus alvarezsaurus amargasaurus "
         "ampelosaurus anchisaurus ankylosaurus apatosaurus archaeopteryx argentinosaurus barosaurus").split()


def _train(tmp, tok, corpus, mode, steps, cell="gru", hidden=24):
    docs = tok.read(corpus)
    tok.fit(docs)
    ids = np.concatenate([tok.encode(d) for d in docs])
    sep = tok.separator_id
    windows = make_windows(mode, ids, sep, 8, 16)
    path = tmp / "model.npz"
    opts = TrainOptions(mode=mode, batch_size=8, seq_length=16, steps=steps, eval_every=steps, lr=0.01, output=path)
    Trainer(Model.create(cell, len(tok.vocab), hidden, seed=0), tok, windows, None, opts).run()
    return path


@pytest.fixture(scope="module")
def names_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    corpus = tmp / "names.txt"
    corpus.write_text("\n".join(NAMES * 5) + "\n")
    return _train(tmp, get_tokenizer("chars")(lower=True), corpus, "items", 150)


@pytest.fixture(scope="module")
def words_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("words")
    corpus = tmp / "text.txt"
    corpus.write_text(" ".join(NAMES[(i * 5) % len(NAMES)] + ("." if i % 7 == 0 else "") for i in range(800)))
    return _train(tmp, get_tokenizer("words")(max_vocab=12), corpus, "stream", 40)


@pytest.fixture(scope="module")
def melody_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("midi")
    (tmp / "tunes").mkdir()
    Q = 480
    for k in range(6):
        notes = [(60 + (i * (k + 2)) % 12, i * Q, i * Q + Q // (1 + i % 2), 0) for i in range(16)]
        build_midi(tmp / "tunes" / f"t{k}.mid", [notes])
    return _train(tmp, get_tokenizer("midi")(), tmp / "tunes", "items", 60)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_same_seed_same_output_and_seeds_differ(names_model):
    a = run("sample", "-m", names_model, "-n", "5", "--seed", "3")
    b = run("sample", "-m", names_model, "-n", "5", "--seed", "3")
    c = run("sample", "-m", names_model, "-n", "5", "--seed", "4")
    assert a.exit_code == 0, a.output
    assert a.output == b.output != c.output
    assert len(a.output.splitlines()) == 5


def test_streamed_text_equals_the_batch_api(names_model):
    for seed in range(5):
        streamed = "".join(stream_text(SampleOptions(prime="al", seed=seed), checkpoint.load(names_model)))
        [s] = seqgen.sample(names_model, n=1, prime="al", seed=seed)
        assert streamed == s.text and s.text.startswith("al")
        cli = run("sample", "-m", names_model, "--prime", "al", "--seed", seed)
        assert cli.output == streamed + "\n"


def test_default_stop_is_the_item_separator(names_model):
    samples = seqgen.sample(names_model, n=30, length=100, seed=1)
    assert all("\n" not in s.text and s.ids[-1] == 0 for s in samples if len(s.ids) < 100)
    assert sum(len(s.ids) < 100 for s in samples) > 25
    full = seqgen.sample(names_model, n=3, length=60, stop="", seed=1)
    assert all(len(s.ids) == 60 for s in full)


def test_stop_text(names_model):
    samples = seqgen.sample(names_model, n=20, length=80, stop="saur", seed=2)
    stopped = [s for s in samples if "saur" in s.text]
    assert len(stopped) >= 5
    assert all(s.text.endswith("saur") and s.text.count("saur") == 1 and s.finish == "stop" for s in stopped)
    assert all(len(s.ids) == 80 for s in samples if "saur" not in s.text)
    single = seqgen.sample(names_model, n=20, length=80, stop="o", seed=2)
    assert all(s.text.count("o") <= 1 and (s.text.endswith("o") or len(s.ids) == 80) for s in single)


def test_greedy_is_the_temperature_limit_and_top_k_1(names_model):
    greedy = run("sample", "-m", names_model, "--greedy", "-n", "2")
    cold = run("sample", "-m", names_model, "--temperature", "0.0001", "-n", "2", "--seed", "9")
    top1 = run("sample", "-m", names_model, "--top-k", "1", "-n", "2", "--seed", "5")
    assert greedy.exit_code == 0 and greedy.stdout == cold.stdout == top1.stdout
    assert len(set(greedy.stdout.splitlines())) == 1


def test_beam_search_is_ordered_and_scores_are_true_log_probabilities(names_model):
    ckpt = checkpoint.load(names_model)
    samples = seqgen.sample(ckpt, n=4, beam=6, prime="a", length=40)
    scores = [s.logp for s in samples]
    assert scores == sorted(scores, reverse=True) and len(samples) == 4
    m = ckpt.model
    for s in samples:
        state, logp, inputs = None, 0.0, [ckpt.tokenizer.vocab.index("a")] + list(s.ids)
        for t in range(len(s.ids)):
            probs, state = m.step(np.array([inputs[t]]), state)
            logp += np.log(probs[0, inputs[t + 1]])
        assert logp == pytest.approx(s.logp, abs=1e-4)
    greedy = seqgen.sample(ckpt, greedy=True, prime="a", length=40)[0]
    assert seqgen.sample(ckpt, beam=1, prime="a", length=40)[0].text == greedy.text
    assert scores[0] >= greedy.logp - 1e-6
    out = json.loads(run("sample", "-m", names_model, "--beam", "3", "-n", "3", "--format", "json").output)
    assert [r["logp"] for r in out["samples"]] == sorted((r["logp"] for r in out["samples"]), reverse=True)


def test_unknown_primer_tokens(names_model, words_model):
    r = run("sample", "-m", names_model, "--prime", "al9#")
    assert r.exit_code == 1 and "'#', '9'" in r.output and "--unknown" in r.output
    assert len(r.output.strip().splitlines()) == 1
    skipped = run("sample", "-m", names_model, "--prime", "al9#", "--unknown", "skip", "--seed", "1")
    plain = run("sample", "-m", names_model, "--prime", "al", "--seed", "1")
    assert skipped.exit_code == 0 and skipped.stdout == plain.stdout
    no_unk = run("sample", "-m", names_model, "--prime", "al9", "--unknown", "unk")
    assert no_unk.exit_code == 1 and "<UNK>" in no_unk.output
    known = checkpoint.load(words_model).tokenizer.vocab[-1]
    unk = run("sample", "-m", words_model, "--prime", f"zebra {known}", "--unknown", "unk", "--length", "5")
    assert unk.exit_code == 0 and unk.stdout.startswith(f"<UNK> {known}")


def test_prime_can_be_left_out_of_the_output(names_model):
    with_prime = seqgen.sample(names_model, prime="all", seed=3)[0].text
    without = seqgen.sample(names_model, prime="all", seed=3, include_prime=False)[0].text
    assert with_prime == "all" + without


def test_json_output_and_output_file(names_model, tmp_path):
    r = run("sample", "-m", names_model, "-n", "3", "--format", "json", "--seed", "2")
    data = json.loads(r.output)
    assert data["seed"] == 2 and len(data["samples"]) == 3
    assert all(isinstance(s["logp"], float) and s["logp"] < 0 for s in data["samples"])
    out = tmp_path / "names.txt"
    r = run("sample", "-m", names_model, "-n", "3", "--seed", "2", "-o", out)
    assert r.exit_code == 0 and r.output == ""
    assert out.read_text().splitlines() == [s["text"] for s in data["samples"]]


def test_midi_samples_are_playable_files_that_load_back(melody_model, tmp_path):
    out = tmp_path / "out"
    r = run("sample", "-m", melody_model, "-n", "3", "-o", out, "--tempo", "90", "--program", "40", "--length", "40",
            "--seed", "0")
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == ["sample_001.mid", "sample_002.mid", "sample_003.mid"]
    tok = checkpoint.load(melody_model).tokenizer
    for f in files:
        mid = mido.MidiFile(f)
        msgs = [m for t in mid.tracks for m in t]
        assert any(m.type == "program_change" and m.program == 40 for m in msgs)
        assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 90 for m in msgs)
        assert tok.read(f)[0][-1] == "<END>"
    primed = run("sample", "-m", melody_model, "--prime-midi", files[0], "-o", tmp_path / "p", "--length", "10",
                 "--seed", "0")
    assert primed.exit_code == 0, primed.output
    first = tok.read(files[0])[0][:-1]
    assert tok.read(tmp_path / "p" / "sample_001.mid")[0][: len(first)] == first


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top-p", "1.5"], "--top-p: Input should be less than or equal to 1"),
        (["--top-p", "0"], "--top-p: Input should be greater than 0"),
        (["--temperature", "0"], "--temperature: Input should be greater than 0"),
        (["--temperature", "-1"], "--temperature: Input should be greater than 0"),
        (["--length", "0"], "--length: Input should be greater than or equal to 1"),
        (["-n", "0"], "-n: Input should be greater than or equal to 1"),
        (["--beam", "2", "-n", "3"], "cannot return n=3 samples from a beam of 2"),
    ],
)
def test_bad_options_give_one_line(names_model, args, message):
    r = run("sample", "-m", names_model, *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_bad_checkpoints_give_one_line(tmp_path, names_model):
    missing = run("sample", "-m", tmp_path / "nope.npz")
    assert missing.exit_code == 1 and "nope.npz: no such checkpoint file or shipped model" in missing.output
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(names_model.read_bytes()[:500])
    r = run("sample", "-m", corrupt)
    assert r.exit_code == 1 and "corrupt.npz" in r.output and len(r.output.strip().splitlines()) == 1
    meta, arrays = checkpoint.read(names_model)
    meta["tokenizer"]["name"] = "klingon"
    meta["tokenizer"]["module"] = "seqgen_klingon"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "alien.npz", **arrays)
    r = run("sample", "-m", tmp_path / "alien.npz")
    assert r.exit_code == 1 and "'klingon'" in r.output and "seqgen_klingon" in r.output and "install" in r.output


def test_failed_output_leaves_nothing_behind(names_model, tmp_path):
    r = run("sample", "-m", names_model, "--prime", "#", "-o", tmp_path / "out.txt")
    assert r.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_sampling_exits_quietly_and_leaves_no_file(names_model, tmp_path, monkeypatch):
    import seqgen.generation.samples

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(seqgen.generation.samples, "draw", interrupted)
    r = run("sample", "-m", names_model, "-n", "3", "-o", tmp_path / "out.txt")
    assert r.exit_code == 130 and "interrupted" in r.output and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


# -- issue 9: seeds, -n independence, outputs --------------------------------------------------

def test_a_fresh_seed_each_run_reported_on_stderr_and_repeatable(names_model):
    a = run("sample", "-m", names_model, "-n", "5")
    b = run("sample", "-m", names_model, "-n", "5")
    assert a.exit_code == b.exit_code == 0
    assert a.stdout != b.stdout
    seed = int(a.stderr.split()[1])
    again = run("sample", "-m", names_model, "-n", "5", "--seed", seed)
    assert again.stdout == a.stdout and again.stderr == ""
    streamed = run("sample", "-m", names_model, "--prime", "a")
    assert streamed.stderr.startswith("seed ")
    result = draw(SampleOptions(n=2), checkpoint.load(names_model))
    repeat = draw(SampleOptions(n=2, seed=result.seed), checkpoint.load(names_model))
    assert isinstance(result.seed, int) and [s.text for s in repeat.samples] == [s.text for s in result.samples]


def test_a_sample_does_not_depend_on_how_many_are_drawn(names_model):
    one = run("sample", "-m", names_model, "-n", "1", "--seed", "3", "--length", "60")
    ten = run("sample", "-m", names_model, "-n", "10", "--seed", "3", "--length", "60")
    assert one.stdout.splitlines()[0] == ten.stdout.splitlines()[0]
    first = seqgen.sample(names_model, n=1, seed=8, stop="", length=80)[0]
    assert seqgen.sample(names_model, n=7, seed=8, stop="", length=80)[3].text != first.text
    assert seqgen.sample(names_model, n=7, seed=8, stop="", length=80)[0].text == first.text


def test_seed_and_format_have_help():
    out = run("sample", "--help").output
    flat = " ".join(out.split())
    assert "--seed INTEGER Random seed" in flat
    assert "--format [text|json] text: the samples" in flat


def test_midi_output_to_a_file_name(melody_model, tmp_path):
    song = tmp_path / "song.mid"
    r = run("sample", "-m", melody_model, "-o", song, "--seed", "1", "--length", "30")
    assert r.exit_code == 0, r.output
    assert song.is_file() and mido.MidiFile(song).tracks
    several = run("sample", "-m", melody_model, "-n", "2", "-o", tmp_path / "tune.mid", "--seed", "1",
                  "--length", "30")
    assert several.exit_code == 0, several.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid", "tune_001.mid", "tune_002.mid"]


def test_outputs_are_never_overwritten_without_force(melody_model, names_model, tmp_path):
    out = tmp_path / "out"
    first = run("sample", "-m", melody_model, "-n", "2", "-o", out, "--seed", "1", "--length", "30")
    assert first.exit_code == 0
    before = (out / "sample_001.mid").read_bytes()
    second = run("sample", "-m", melody_model, "-o", out, "--seed", "2", "--length", "30")
    assert second.exit_code != 0 and "sample_001.mid" in second.output and "--force" in second.output
    assert (out / "sample_001.mid").read_bytes() == before
    forced = run("sample", "-m", melody_model, "-o", out, "--seed", "2", "--length", "30", "--force")
    assert forced.exit_code == 0 and (out / "sample_001.mid").read_bytes() != before
    text = tmp_path / "names.txt"
    text.write_text("keep me")
    refused = run("sample", "-m", names_model, "-o", text, "--seed", "1")
    assert refused.exit_code != 0 and "already exists" in refused.output and text.read_text() == "keep me"
    assert run("sample", "-m", names_model, "-o", text, "--seed", "1", "--force").exit_code == 0
    assert text.read_text() != "keep me"


def test_json_format_with_a_midi_model(melody_model, tmp_path):
    import base64
    import io

    r = run("sample", "-m", melody_model, "-n", "2", "-o", tmp_path, "--format", "json", "--seed", "4",
            "--length", "30")
    data = json.loads(r.stdout)
    assert data["seed"] == 4 and [s["path"] for s in data["samples"]] == [str(tmp_path / "sample_001.mid"),
                                                                        str(tmp_path / "sample_002.mid")]
    assert all(mido.MidiFile(s["path"]).tracks for s in data["samples"])
    inline = json.loads(run("sample", "-m", melody_model, "-o", "-", "--format", "json", "--seed", "4",
                            "--length", "30").stdout)
    raw = base64.b64decode(inline["samples"][0]["midi_base64"])
    assert raw == (tmp_path / "sample_001.mid").read_bytes()
    assert mido.MidiFile(file=io.BytesIO(raw)).tracks


def test_midi_primer_tempo_is_kept(melody_model, tmp_path, write_midi):
    primer = write_midi(tmp_path / "p.mid", [[(60, 0, 480, 0), (62, 480, 960, 0)]], tempo=mido.bpm2tempo(100))
    r = run("sample", "-m", melody_model, "--prime-midi", primer, "-o", tmp_path / "out.mid", "--length", "10",
            "--unknown", "skip")
    assert r.exit_code == 0, r.output
    tempos = [m.tempo for t in mido.MidiFile(tmp_path / "out.mid").tracks for m in t if m.type == "set_tempo"]
    assert [round(mido.tempo2bpm(t)) for t in tempos] == [100]


def test_assembler_gives_the_same_text_fed_at_once_or_token_by_token(names_model):
    from seqgen.generation.samples import Assembler, plan

    ckpt = checkpoint.load(names_model)
    tok = ckpt.tokenizer
    for stops, strip in ((None, False), (["saur"], False), (["saur", "on"], True), (["a"], True)):
        for seed in range(6):
            options = SampleOptions(prime="al", seed=seed, length=60, stop="" if stops else None)
            p = plan(ckpt, options, stops=stops)
            ids = draw(options.replace(stop=""), ckpt).samples[0].ids
            whole = Assembler(tok, p, strip_stop=strip)
            shown_whole = whole.feed(ids) + whole.close()
            single = Assembler(tok, p, strip_stop=strip)
            shown_single = "".join(single.feed(i) for i in ids) + single.close()
            assert shown_whole == shown_single == whole.text == single.text
            assert whole.finish == single.finish and list(whole.ids) == list(single.ids)
            if stops and whole.finish == "stop":
                assert any(s in whole.text[len(whole.prime_text):] for s in stops) != strip
