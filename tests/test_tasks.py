"""Tagging and classification end to end: labelled corpora through the conll and labelled
tokenizers, windows, training, checkpoints, `seqgen eval` scores, `seqgen predict` and the
one-line errors for bad input."""

import json

import numpy as np
import pytest

from seqgen import api
from seqgen.options import TrainOptions
from seqgen.storage import checkpoint
from seqgen.training import metrics
from seqgen.training.data import LabelledItem, LabelledWindows

# ---------------------------------------------------------------- corpora


def _look_ahead_conll(path, n, seed):
    """Sentences of a/b/c whose label says what the NEXT token is: "B-A" before an "a", else
    "O". Only a model that reads ahead can tell."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        words = rng.choice(list("abc"), rng.integers(3, 9))
        for i, w in enumerate(words):
            lines.append(f"{w}\t{'B-A' if i + 1 < len(words) and words[i + 1] == 'a' else 'O'}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _books_tsv(path, n, seed):
    """Lines whose class is the word they start with (x or y), the rest noise."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        label = rng.choice(["first", "second"])
        noise = " ".join(rng.choice(["p", "q", "r", "s"], rng.integers(2, 6)))
        lines.append(f"{label}\t{'x' if label == 'first' else 'y'} {noise}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _train(tmp_path, corpus, valid, name, **options):
    settings = dict(corpus=corpus, valid=valid, tokenizer="conll", task="tag", cell="gru", hidden_size=8,
                    batch_size=8, seq_length=16, steps=150, eval_every=50, lr=0.02, output=tmp_path / f"{name}.npz")
    settings.update(options)
    return api.train(TrainOptions(**settings))


# ---------------------------------------------------------------- windows and metrics
def test_labelled_windows_pad_items_and_put_a_class_at_the_last_step():
    items = [LabelledItem(np.array([3, 4, 5], np.int32), np.array([1, 0, 1], np.int32), "f:1"),
             LabelledItem(np.array([6], np.int32), np.array([2], np.int32), "f:5")]
    tag = LabelledWindows(items, "tag", 2, shuffle=False)
    [w] = list(tag.iter_windows())
    assert w.inputs.T.tolist() == [[3, 4, 5], [6, 0, 0]]
    assert w.targets.T.tolist() == [[1, 0, 1], [2, -1, -1]]
    assert w.reset
    items = [LabelledItem(np.array([3, 4, 5], np.int32), np.array([1], np.int32), "f:1"),
             LabelledItem(np.array([6], np.int32), np.array([0], np.int32), "f:2")]
    [w] = list(LabelledWindows(items, "classify", 2, shuffle=False).iter_windows())
    assert w.targets.T.tolist() == [[-1, -1, 1], [0, -1, -1]]


def test_entities_are_counted_as_conlleval_counts_them():
    assert metrics.entities(["B-PER", "I-PER", "O", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC")}
    assert metrics.entities(["O", "I-PER", "I-PER"]) == {(1, 3, "PER")}  # I after O starts an entity
    assert metrics.entities(["B-PER", "I-LOC"]) == {(0, 1, "PER"), (1, 2, "LOC")}  # a type change starts one
    assert metrics.entities(["B-PER", "B-PER"]) == {(0, 1, "PER"), (1, 2, "PER")}
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"]]  # the person's boundary is wrong: only LOC counts
    score = metrics.entity_f1(gold, pred)
    assert (score.precision, score.recall, score.support) == (0.5, 0.5, 2)
    by_label = metrics.per_label(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    assert by_label["a"].precision == 1.0 and by_label["a"].recall == 0.5
    assert by_label["b"].precision == 0.5 and by_label["b"].recall == 1.0


# ---------------------------------------------------------------- training, eval, predict
@pytest.fixture(scope="module")
def look_ahead(tmp_path_factory):
    """A bidirectional and a unidirectional tagger trained on the look-ahead corpus."""
    tmp = tmp_path_factory.mktemp("tag")
    train = _look_ahead_conll(tmp / "train.conll", 300, 0)
    valid = _look_ahead_conll(tmp / "valid.conll", 60, 1)
    bi = _train(tmp, train, valid, "bi", bidirectional=True)
    uni = _train(tmp, train, valid, "uni", bidirectional=False)
    return tmp, train, valid, bi, uni


def test_the_backward_direction_lets_a_tagger_read_ahead(look_ahead, cli_run):
    tmp, _, valid, bi, uni = look_ahead
    scores = {}
    for name, result in (("bi", bi), ("uni", uni)):
        scores[name] = api.evaluate(api.EvalOptions(model=str(result.output), corpus=valid))
    assert scores["bi"].entity.f1 > 0.95
    assert scores["uni"].entity.f1 < 0.6  # the next token is a coin toss without looking ahead
    out = cli_run("eval", bi.output, valid)
    assert out.exit_code == 0, out.output
    assert "entity-level (BIO spans)" in out.output and "B-A" in out.output
    assert f"accuracy: {scores['bi'].accuracy:.4f}" in out.output


def test_checkpoint_keeps_task_labels_and_direction(look_ahead):
    _, _, _, bi, _ = look_ahead
    ckpt = checkpoint.load(bi.output)
    c = ckpt.model.config
    assert (c.task, c.bidirectional, c.labels) == ("tag", True, ("B-A", "O"))
    assert ckpt.tokenizer.name == "conll" and "<UNK>" in ckpt.tokenizer.vocab


def test_predict_formats(look_ahead, cli_run):
    tmp, _, valid, bi, _ = look_ahead
    unlabelled = tmp / "plain.conll"
    unlabelled.write_text("a\nb\na\n\nc\nc\n")
    out = cli_run("predict", bi.output, unlabelled, "--format", "conll")
    assert out.exit_code == 0, out.output
    assert out.output.split("\n")[:3] == ["a\tO", "b\tB-A", "a\tO"]
    out = cli_run("predict", bi.output, unlabelled, "--format", "json")
    records = [json.loads(line) for line in out.output.splitlines()]
    assert [r["tokens"] for r in records] == [["a", "b", "a"], ["c", "c"]]
    assert records[0]["labels"] == ["O", "B-A", "O"] and "gold" not in records[0]
    out = cli_run("predict", bi.output, unlabelled, "--format", "tsv", "-o", tmp / "out.tsv")
    assert out.exit_code == 0 and out.output == ""
    assert (tmp / "out.tsv").read_text() == "a b a\tO B-A O\nc c\tO O\n"
    gold = cli_run("predict", bi.output, valid, "--format", "conll")  # gold column kept: conlleval's layout
    first = gold.output.split("\n")[0].split("\t")
    assert len(first) == 3


def test_resume_continues_a_tagger_bit_for_bit(tmp_path):
    train = _look_ahead_conll(tmp_path / "train.conll", 40, 3)
    whole = _train(tmp_path, train, None, "whole", bidirectional=True, steps=12, eval_every=6, valid_fraction=0.2)
    _train(tmp_path, train, None, "half", bidirectional=True, steps=6, eval_every=6, valid_fraction=0.2)
    resumed = api.resume(tmp_path / "half.npz", {"steps": 12})
    a, b = checkpoint.load(whole.output).model.params, checkpoint.load(resumed.output).model.params
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_classifier_end_to_end(tmp_path, cli_run):
    train, valid = _books_tsv(tmp_path / "train.tsv", 200, 0), _books_tsv(tmp_path / "valid.tsv", 40, 1)
    out = cli_run("train", train, "--valid", valid, "-t", "labelled", "--task", "classify", "--bidirectional",
                  "--cell", "lstm", "--hidden-size", "8", "--steps", "120", "--batch-size", "8", "--lr", "0.02",
                  "--eval-every", "60", "-o", tmp_path / "c.npz", "-q")
    assert out.exit_code == 0, out.output
    result = api.evaluate(api.EvalOptions(model=str(tmp_path / "c.npz"), corpus=valid))
    assert result.task == "classify" and result.entity is None
    assert result.accuracy > 0.95  # the first word decides, and the backward state ends on it
    plain = tmp_path / "plain.txt"
    plain.write_text("x p q\ny s s r\n")
    out = cli_run("predict", tmp_path / "c.npz", plain)
    assert out.output == "first\tx p q\nsecond\ty s s r\n"
    out = cli_run("predict", tmp_path / "c.npz", plain, "--format", "conll")
    assert out.exit_code == 1 and "conll is for tag models" in out.output


# ---------------------------------------------------------------- bad input: one line each
def _one_line_error(out, *fragments):
    assert out.exit_code == 1, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.output, out.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_conll_with_a_missing_label_column(tmp_path, cli_run):
    bad = tmp_path / "bad.conll"
    bad.write_text("the\tO\ncat\tO\nsat\n\n")
    out = cli_run("train", bad, "-t", "conll", "--task", "tag", "-o", tmp_path / "m.npz")
    _one_line_error(out, f"{bad}:3", "no label column")
    assert not (tmp_path / "m.npz").exists()


def test_unlabelled_file_to_task_tag(tmp_path, cli_run):
    plain = tmp_path / "plain.conll"
    plain.write_text("the\ncat\n\nsat\n")
    _one_line_error(cli_run("train", plain, "-t", "conll", "--task", "tag", "-o", tmp_path / "m.npz"),
                    f"{plain}:1", "no labels")
    text = tmp_path / "plain.txt"
    text.write_text("the cat sat\n")
    _one_line_error(cli_run("train", text, "--task", "tag", "-o", tmp_path / "m.npz"),
                    "--task tag needs a labelled corpus", "'chars' reads no labels")


def test_label_unseen_in_training(look_ahead, cli_run):
    tmp, _, _, bi, _ = look_ahead
    odd = tmp / "odd.conll"
    odd.write_text("a\tO\nb\tB-ZZZ\n")
    for command in (("predict", bi.output, odd), ("eval", bi.output, odd)):
        _one_line_error(cli_run(*command), f"{odd}:1", "label 'B-ZZZ' was not seen in training")


def test_bidirectional_language_model_is_refused(tmp_path, cli_run):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world\n" * 20)
    _one_line_error(cli_run("train", corpus, "--bidirectional", "-o", tmp_path / "m.npz"), "cannot read ahead")


def test_predict_with_a_language_model_is_refused(tmp_path, cli_run):
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\n")
    _one_line_error(cli_run("predict", "dinos", plain), "is a language model")


# ---------------------------------------------------------------- a shipped example's recipe
def test_books_example_reproduces_its_recorded_figures(tmp_path):
    """The which-book classifier (the cheapest example, about 25 s) trained by its recipe gives
    the figures recorded in docs/task-figures.json, within the script's stated tolerance."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_task_models", root / "scripts" / "make_task_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recorded = json.loads(module.FIGURES.read_text())["books-bi"]
    figures = module.run("books", True, tmp_path)
    for key in ("valid_accuracy", "valid_macro_f1", "test_accuracy", "test_macro_f1"):
        assert abs(figures[key] - recorded[key]) <= module.TOLERANCE, (key, figures[key], recorded[key])
