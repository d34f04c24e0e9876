"""Sampling rules: repetition penalty, no-repeat n-grams, MIDI pitch range and polyphony cap
(seqgen/kernels/constraints.py, seqgen/generation/rules.py, Tokenizer.token_classes)."""

import numpy as np
import pytest
from click.testing import CliRunner

import seqgen
from seqgen.cli import cli
from seqgen.errors import ConfigError, PluginError
from seqgen.generation.sampler import Batch, Params, Rules, Weights, generate, primed_state, stream_generators
from seqgen.generation.samples import load_model
from seqgen.kernels.constraints import BANNED, NOTE, STEP_END, apply_rules
from seqgen.plugins.tokenizer import TokenClasses, Tokenizer


def reference_rules(row, classes, max_notes, step_notes, penalty, window, ngram, history, fell_back=None):
    """The rules in plain numpy, written from their definitions (module docstring of constraints.py).
    ``fell_back``: a list to which True is appended when blocking would have left no token."""
    out = row.copy()
    banned = (classes & BANNED) != 0
    if max_notes and step_notes >= max_notes:
        banned |= (classes & NOTE) != 0
    out[banned] = -np.inf
    if penalty != 1.0:
        seen = np.unique(history[-window:] if window else history)
        out[seen] = np.where(out[seen] > 0, out[seen] / penalty, out[seen] * penalty)
    L = len(history)
    if ngram and L >= ngram - 1:
        prefix = list(history[L - ngram + 1:])
        blocked = {history[i + ngram - 1] for i in range(L - ngram + 1) if list(history[i:i + ngram - 1]) == prefix}
        blocked = [t for t in blocked if np.isfinite(out[t])]
        if blocked and len(blocked) < np.isfinite(out).sum():
            out[blocked] = -np.inf
        elif blocked and fell_back is not None:
            fell_back.append(True)
    return out


def test_rules_kernel_equals_the_numpy_reference():
    rng = np.random.default_rng(0)
    V = 7
    mark, tick = np.zeros(V, np.int64), np.zeros(1, np.int64)
    adjusted = np.empty(V)
    blocked_cases = penalised = 0
    fell_back = []
    for case in range(600):
        row = rng.normal(size=V) * 3
        L = int(rng.integers(0, 40))
        history = rng.integers(0, 3 if case % 3 == 0 else V, size=L).astype(np.int32)  # small alphabets repeat
        classes = rng.choice(np.array([0, BANNED, NOTE, STEP_END], np.uint8), size=V, p=[0.5, 0.15, 0.25, 0.1])
        classes[0] = STEP_END  # always something left to draw, as rules_for guarantees
        args = (int(rng.integers(0, 3)), int(rng.integers(0, 4)), float(rng.choice([1.0, 1.3, 2.0])),
                int(rng.choice([0, 1, 5, 100])), int(rng.choice([0, 1, 2, 3, 5])))
        capacity = np.zeros(L + 5, np.int32)  # the kernel reads only the first L entries
        capacity[:L] = history
        apply_rules(row, adjusted, classes, *args, capacity, L, mark, tick)
        expected = reference_rules(row, classes, *args, history, fell_back)
        np.testing.assert_array_equal(adjusted, expected)
        blocked_cases += np.isinf(expected).sum() > np.isinf(reference_rules(row, classes, *args[:4], 0, history)).sum()
        penalised += args[2] != 1.0 and L > 0
    assert blocked_cases > 50 and penalised > 100 and len(fell_back) > 3  # the cases exercised every branch


def repeated_ngrams(ids, n):
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


def test_a_blocked_ngram_never_appears_in_long_samples():
    ckpt = load_model("shakespeare")
    prime = "ROMEO:\nI love thee, I love thee"
    greedy = seqgen.sample(ckpt, prime=prime, greedy=True, length=600, stop="", seed=0)[0]
    ids = ckpt.tokenizer.encode(list(prime) + greedy.tokens[len(prime):])
    assert repeated_ngrams(ids, 6) > 100  # greedy on its own loops: the rule has work to do
    for kwargs in (dict(greedy=True), dict(temperature=0.7)):
        for s in seqgen.sample(ckpt, n=3, prime=prime, no_repeat_ngram=6, length=600, stop="", seed=4, **kwargs):
            ids = ckpt.tokenizer.encode(s.tokens)  # the primer is part of the history, and of s.tokens
            assert len(ids) == len(prime) + 600
            assert repeated_ngrams(ids, 6) == repeated_ngrams(ids[:len(prime)], 6)


def test_repetition_penalty_makes_greedy_loop_less_and_scores_stay_the_models():
    ckpt = load_model("shakespeare")
    off = seqgen.sample(ckpt, prime="KING:", greedy=True, length=400, stop="", seed=0)[0]
    on = seqgen.sample(ckpt, prime="KING:", greedy=True, length=400, stop="", seed=0, repetition_penalty=1.5,
                       repetition_window=16)[0]
    assert on.text != off.text
    assert repeated_ngrams(list(on.text), 12) < repeated_ngrams(list(off.text), 12)
    # the log-probabilities are the model's: a rule that never binds leaves tokens and scores alone
    same = seqgen.sample(ckpt, prime="KING:", greedy=True, length=400, stop="", seed=0, no_repeat_ngram=1000)[0]
    assert same.text == off.text and same.logp == pytest.approx(off.logp, rel=1e-12)


def steps_of(tokens):
    """Poly tokens -> list of the note tokens of each step."""
    steps, current = [], []
    for tok in tokens:
        if tok in ("<STEP>", "<END>"):
            steps.append(current)
            current = []
        else:
            current.append(tok)
    return steps + [current]


def pitches(tokens):
    return [int(t[1:].split("_")[0]) for t in tokens if t[:1] in "phn" and t[1:2].isdigit()]


def test_max_polyphony_and_pitch_range_hold_in_every_step():
    ckpt = load_model("chorale-satb")
    free = seqgen.sample(ckpt, n=6, length=500, seed=2)
    assert max(len(s) for x in free for s in steps_of(x.tokens)) >= 4  # the model writes four voices
    assert min(pitches(sum((x.tokens for x in free), []))) < 48
    ruled = seqgen.sample(ckpt, n=6, length=500, seed=2, max_polyphony=3, min_pitch=48, max_pitch=74)
    for x in ruled:
        assert max(len(s) for s in steps_of(x.tokens)) <= 3
        assert 48 <= min(pitches(x.tokens)) and max(pitches(x.tokens)) <= 74
    # a primer's open step counts: after three notes the next token must close the step
    primed = seqgen.sample(ckpt, n=4, length=30, seed=1, prime="p48 p55 p64", max_polyphony=3)
    for x in primed:
        assert x.tokens[3] in ("<STEP>", "<END>") and max(len(s) for s in steps_of(x.tokens)) <= 3


def test_pitch_range_on_melodies():
    ckpt = load_model("chorale")
    for x in seqgen.sample(ckpt, n=5, length=200, seed=3, min_pitch=65, max_pitch=72):
        assert pitches(x.tokens) and 65 <= min(pitches(x.tokens)) and max(pitches(x.tokens)) <= 72


@pytest.mark.parametrize("name, rules", [
    ("shakespeare", dict(repetition_penalty=1.3, repetition_window=20, no_repeat_ngram=5)),
    ("chorale-satb", dict(max_polyphony=3, min_pitch=45, max_pitch=76, no_repeat_ngram=30)),
])
def test_a_ruled_stream_does_not_depend_on_its_batch(name, rules):
    from seqgen.generation.rules import rules_for
    from seqgen.options import SampleOptions

    ckpt = load_model(name)
    m = ckpt.model
    rule = rules_for(ckpt.tokenizer, SampleOptions(**rules))
    prime = [0, 2, 3]
    alone = generate(m, n=1, length=150, prime=prime, rules=rule, seed=5).samples[0]
    np.testing.assert_array_equal(generate(m, n=10, length=150, prime=prime, rules=rule, seed=5).samples[0], alone)
    mine = Params(rules=rule)
    single = Batch(Weights(m))
    single.add(primed_state(m, prime), prime[-1], mine, stream_generators(5, 1), 150, ["mine"], prime)
    single_out, _ = single.steps(100)
    np.testing.assert_array_equal(single_out[single_out[:, 0] >= 0, 0], alone[:100])
    # at row 20 of a batch of 37 beside unruled streams and others' rules, joining 7 steps late
    batch = Batch(Weights(m))
    others = Params(temperature=0.7, top_k=5)
    other_rules = Params(rules=Rules(repetition_penalty=2.0, no_repeat_ngram=2))
    batch.add(primed_state(m, [1, 2, 3]), 3, others, stream_generators(99, 10), 300, range(10), [1, 2, 3])
    batch.add(primed_state(m, [1]), 1, other_rules, stream_generators(97, 10), 300, range(10), [1])
    batch.steps(7)
    batch.add(primed_state(m, prime), prime[-1], mine, stream_generators(5, 1), 150, ["mine"], prime)
    batch.add(primed_state(m, [2]), 2, others, stream_generators(98, 16), 300, range(16))
    out, _ = batch.steps(100)
    np.testing.assert_array_equal(out[:, 20], single_out[:, 0])
    batch.keep(np.arange(len(batch)) >= 15)  # others leave: the history rows move with their streams
    out, _ = batch.steps(50)
    np.testing.assert_array_equal(out[out[:, 5] >= 0, 5], alone[100:])


def test_note_rules_are_refused_where_they_cannot_apply():
    with pytest.raises(ConfigError, match=r"^max_polyphony: applies to MIDI models only") as e:
        seqgen.sample("dinos", max_polyphony=4)
    assert e.value.fields == ("max_polyphony",)
    with pytest.raises(ConfigError, match=r"^min_pitch: applies to MIDI models only"):
        seqgen.sample("shakespeare", min_pitch=40)
    with pytest.raises(ConfigError, match=r"^max_polyphony: this model's notes come one at a time"):
        seqgen.sample("chorale", max_polyphony=2)
    with pytest.raises(ConfigError, match=r"^max_pitch: no note of this model lies in 0..20"):
        seqgen.sample("chorale-satb", max_pitch=20)
    with pytest.raises(ConfigError, match=r"^no_repeat_ngram: applies to sampling and greedy, not to beam search"):
        seqgen.sample("dinos", beam=2, no_repeat_ngram=3)
    with pytest.raises(ConfigError, match=r"^min_pitch: must not be above the maximum pitch"):
        seqgen.sample("chorale-satb", min_pitch=70, max_pitch=60)
    with pytest.raises(ConfigError, match=r"^repetition_penalty: Input should be greater than or equal to 1"):
        seqgen.sample("dinos", repetition_penalty=0.5)


def test_cli_flags():
    runner = CliRunner()
    r = runner.invoke(cli, ["sample", "--model", "shakespeare", "--max-polyphony", "4"])
    assert r.exit_code == 1 and r.output.strip().splitlines() == [
        "Error: --max-polyphony: applies to MIDI models only; this model's 'chars' tokenizer has no notes"]
    r = runner.invoke(cli, ["sample", "--model", "dinos", "--beam", "2", "--repetition-penalty", "1.2"])
    assert r.exit_code == 2 and "--repetition-penalty: applies to sampling and greedy, not to beam search" in r.output
    r = runner.invoke(cli, ["sample", "--model", "dinos", "-n", "3", "--seed", "4", "--repetition-penalty", "1.4",
                            "--repetition-window", "3", "--no-repeat-ngram", "2"])
    assert r.exit_code == 0, r.output
    expected = seqgen.sample("dinos", n=3, seed=4, repetition_penalty=1.4, repetition_window=3, no_repeat_ngram=2)
    assert r.output == "".join(s.text + "\n" for s in expected)
    assert r.output != "".join(s.text + "\n" for s in seqgen.sample("dinos", n=3, seed=4))
    r = runner.invoke(cli, ["sample", "--model", "chorale-satb", "--seed", "1", "--length", "200", "--max-polyphony",
                            "2", "--min-pitch", "50", "--max-pitch", "70", "-o", "-", "--format", "json"])
    assert r.exit_code == 0, r.output
    text = __import__("json").loads(r.output)["samples"][0]["text"].split()
    assert max(len(s) for s in steps_of(text)) <= 2 and 50 <= min(pitches(text)) and max(pitches(text)) <= 70


class NotesTokenizer(Tokenizer):
    name = "notes-test"

    def read_file(self, path):
        return path.read_text().split()

    def render(self, tokens):
        return " ".join(tokens)

    def token_classes(self):
        return TokenClasses(np.array([-1, 60, 200]), None)


def test_token_classes_are_checked_at_the_plugin_boundary():
    tok = NotesTokenizer()
    tok.fit([["a", "b"]])
    with pytest.raises(PluginError, match=r"NotesTokenizer.token_classes\) returned TokenClasses that do not fit: "
                                          r"pitch must be \(2,\) integers"):
        tok.token_classes()
    tok.fit([["a", "b", "c"]])
    with pytest.raises(PluginError, match=r"pitch values must be MIDI pitches 0-127"):
        tok.token_classes()
    assert Tokenizer.token_classes(tok) is None  # the base class knows no notes
