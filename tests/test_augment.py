"""Training-data augmentation (Tokenizer.augment) and midi's transposition (issue 14, part 2)."""

import numpy as np
import pytest
from conftest import build_midi

from seqgen import api
from seqgen.errors import ConfigError, PluginError
from seqgen.options import EvalOptions, TrainOptions
from seqgen.plugins.host import get_tokenizer
from seqgen.storage import checkpoint
from seqgen.training.data import augment_training, encode_corpus, split_validation

Midi = get_tokenizer("midi")
S = 120  # ticks per grid step at 480 ticks per beat, 4 steps per quarter

# (pitch, start step, end step) per voice: a melody with a rest and a repeated pitch, and chords
# with held notes under moving ones
TUNE = [(60, 0, 4), (62, 4, 6), (62, 6, 8), (65, 10, 16)]
CHORALE = [[(67, 0, 4), (69, 4, 8), (71, 8, 16)], [(60, 0, 8), (62, 8, 16)], [(48, 0, 16)]]


def write(path, *voices):
    build_midi(path, [[(p, s * S, e * S, i) for p, s, e in v] for i, v in enumerate(voices)])
    return path


def shifted(notes, shift):
    return np.array([(s, e, p + shift) for s, e, p in notes.tolist()])


def notes_of(tok, tokens, path):
    """The grid notes of tokens written to a .mid file and read back."""
    tok.write(tokens, path)
    return tok.read_notes(path)


@pytest.mark.parametrize("encoding, voices", [("melody", [TUNE]), ("poly", CHORALE)])
def test_copies_are_the_piece_shifted_with_the_same_rhythm(tmp_path, encoding, voices):
    tok = Midi(encoding=encoding, transpose="-3..2", pitch_range="0..127")
    [doc] = tok.read(write(tmp_path / "a.mid", *voices))
    original = tok.read_notes(tmp_path / "a.mid")
    out = list(tok.augment([doc]))
    assert out[0] == doc and len(out) == 6  # the piece first, then shifts -3, -2, -1, 1, 2
    for shift, copy in zip([-3, -2, -1, 1, 2], out[1:]):
        assert len(copy) == len(doc) and copy[-1] == "<END>"
        np.testing.assert_array_equal(notes_of(tok, copy, tmp_path / "c.mid"), shifted(original, shift))
        if encoding == "poly":  # steps and struck/held marks stay where they were
            assert [t[0] for t in copy] == [t[0] for t in doc]
        else:  # durations and rests stay
            assert [t.split("_")[1:] for t in copy] == [t.split("_")[1:] for t in doc]


def test_copies_leaving_the_range_of_the_training_pieces_are_dropped():
    tok = Midi(transpose="all")
    narrow = ["n60_d4", "r_d2", "n64_d2", "<END>"]
    wide = ["n55_d4", "n72_d4", "<END>"]  # sets the range: 55..72
    out = list(tok.augment([narrow, wide]))
    # narrow fits every key of -5..6 (55..70 at most); wide only its own
    assert out[0] == narrow and out[12] == wide and len(out) == 13
    assert [int(c[0][1:3]) - 60 for c in out[1:12]] == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6]
    # an explicit pitch range wins: 58..67 allows -2..3 for narrow
    tok = Midi(transpose="all", pitch_range="58..67")
    assert [c[0] for c in tok.augment([narrow])][1:] == ["n58_d4", "n59_d4", "n61_d4", "n62_d4", "n63_d4"]
    # a piece of rests has no key: no copies
    assert list(Midi(transpose="all").augment([["r_d4", "<END>"]])) == [["r_d4", "<END>"]]


def test_poly_range_counts_every_voice():
    tok = Midi(encoding="poly", transpose="-2..2", pitch_range="47..72")
    piece = ["p48", "p70", "<STEP>", "h48", "h70", "<STEP>", "<END>"]  # 48..70 fits -1..2
    assert [c[0] for c in tok.augment([piece])] == ["p48", "p47", "p49", "p50"]


def test_augmentation_is_deterministic_and_off_by_default(tmp_path):
    docs = [["n60_d4", "n67_d2", "<END>"], ["n62_d1", "r_d3", "n65_d2", "<END>"]]
    assert list(Midi(transpose="all").augment(docs)) == list(Midi(transpose="all").augment(docs))
    assert not Midi().augments and list(Midi().augment(docs)) == docs
    assert not get_tokenizer("chars")().augments  # the base class's identity


@pytest.mark.parametrize("option, value", [("transpose", "up"), ("transpose", "1..3"), ("transpose", "-13..0"),
                                           ("transpose", "3..-3"), ("transpose", "-3"), ("pitch_range", "60"),
                                           ("pitch_range", "80..60"), ("pitch_range", "0..128")])
def test_bad_values_are_one_line_naming_the_option(tmp_path, cli_run, option, value):
    with pytest.raises(ConfigError, match=f"option '{option}' must be"):
        Midi(**{option: value})
    write(tmp_path / "a.mid", TUNE)
    result = cli_run("train", tmp_path / "a.mid", "-t", "midi", "-O", option, value, "-o", tmp_path / "m.npz")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"option '{option}' must be" in lines[0] and value in lines[0], result.output
    assert not (tmp_path / "m.npz").exists()


# ------------------------------------------------------------------------- training
@pytest.fixture
def tunes(tmp_path):
    """Twelve short tunes in a directory, each in a different key and length."""
    corpus = tmp_path / "tunes"
    corpus.mkdir()
    for i in range(12):
        write(corpus / f"{i:02}.mid", [(p + i % 5, s + i, e + i) for p, s, e in TUNE])
    return corpus


def options(tmp_path, corpus, transpose="all", **changes):
    settings = dict(corpus=corpus, tokenizer="midi", tokenizer_options={"transpose": transpose}, mode="items",
                    hidden_size=8, seq_length=8, batch_size=2, steps=4, eval_every=2, valid_fraction=0.25,
                    output=tmp_path / "m.npz")
    settings.update(changes)
    return TrainOptions.parse(settings)


def test_only_the_training_items_are_augmented(tmp_path, tunes):
    plain = api.train(options(tmp_path, tunes, transpose="none", output=tmp_path / "plain.npz")).trainer
    aug = api.train(options(tmp_path, tunes)).trainer
    valid = [i.tolist() for i in aug.valid.items]
    # the same three tunes are held out, and in the original key
    assert [aug.tokenizer.decode(i) for i in aug.valid.items] == [plain.tokenizer.decode(i) for i in plain.valid.items]
    assert len(valid) == 3
    # the nine training tunes are each followed by their copies, none of them a validation tune
    train = [aug.tokenizer.decode(i) for i in aug.train.items]
    originals = [plain.tokenizer.decode(i) for i in plain.train.items]
    assert [t for t in train if t in originals] == originals
    assert len(train) > 3 * len(originals)
    expected = list(Midi(transpose="all").augment(originals))
    assert train == expected
    # the vocabulary holds the transposed pitches
    assert {t for doc in expected for t in doc} <= set(aug.tokenizer.vocab)


def test_validation_loss_is_that_of_the_untouched_validation_files(tmp_path, tunes):
    valid = tmp_path / "valid"
    valid.mkdir()
    for i, name in enumerate(["v0.mid", "v1.mid"]):
        write(valid / name, [(p + i, s, e) for p, s, e in TUNE])
    result = api.train(options(tmp_path, tunes, valid=valid, valid_fraction=0.0))
    scored = api.evaluate(EvalOptions(model=str(result.best_output), corpus=valid))
    assert scored.tokens == result.trainer.valid.num_tokens == 2 * (len(TUNE) + 2)  # 4 notes, a rest, <END>
    assert scored.loss == pytest.approx(result.best_valid, rel=1e-5)


def test_same_seed_same_model_and_the_checkpoint_keeps_the_options(tmp_path, tunes, cli_run):
    first = api.train(options(tmp_path, tunes, tokenizer_options={"transpose": "-2..3", "pitch_range": "55..80"}))
    second = api.train(options(tmp_path, tunes, tokenizer_options={"transpose": "-2..3", "pitch_range": "55..80"},
                               output=tmp_path / "m2.npz"))
    a, b = checkpoint.load(first.output), checkpoint.load(second.output)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])
    assert a.tokenizer.config["transpose"] == "-2..3" and a.tokenizer.config["pitch_range"] == "55..80"
    result = cli_run("sample", "--model", first.output, "--length", 40, "--seed", 1, "-o", tmp_path / "s.mid")
    assert result.exit_code == 0, result.output
    assert len(a.tokenizer.read_notes(tmp_path / "s.mid")) > 0


def test_resume_augments_the_same_way(tmp_path, tunes):
    api.train(options(tmp_path, tunes, steps=2))
    result = api.resume(tmp_path / "m.npz", {"steps": 4})
    straight = api.train(options(tmp_path, tunes, output=tmp_path / "straight.npz"))
    assert result.step == straight.step == 4
    a, b = checkpoint.load(result.output), checkpoint.load(straight.output)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])


def test_stream_mode_augments_whole_tunes_and_keeps_the_cut_one_last(tmp_path, tunes):
    tok = Midi(transpose="-1..1")
    tok.fit(tok.augment(tok.iter_documents(tunes)))
    ids = encode_corpus(tok, tunes)
    train, valid = split_validation(ids, tok.separator_id, "stream", 0.1)
    out = augment_training(tok, train, tok.separator_id, "stream")
    end = int(np.flatnonzero(train == tok.separator_id)[-1]) + 1
    whole = [tok.decode(i) for i in np.split(train[:end], np.flatnonzero(train[:end] == tok.separator_id)[:-1] + 1)]
    expected = [t for doc in tok.augment(whole) for t in doc] + tok.decode(train[end:])
    assert tok.decode(out) == expected and len(train) > end  # the split did cut a tune
    assert out.dtype == np.int32


def test_a_broken_augment_is_a_plugin_error_naming_the_method(tmp_path):
    class Broken(get_tokenizer("chars")):
        name = "broken"

        def augment(self, documents):
            return [["a", 1]]

    tok = Broken()
    assert tok.augments
    with pytest.raises(PluginError, match=r"Broken\.augment\) returned a list holding int 1"):
        list(tok.augment([["a"]]))
