"""Do the sampling rules help? Measured on the shipped models (issue 14, part 4).

Text (shakespeare): for each setting, distinct-1/2/3 (distinct word n-grams / all word n-grams,
Li et al. 2016, pooled over the samples) of samples at temperature 1, and of greedy
continuations of primers from the held-out tail of tinyshakespeare (the last 10%, the model's
validation split), plus the greedy outputs' log-likelihood under the model (nats/char; the
sampler scores tokens under the model without the rules) and how much of them loops (the share
of characters that end a 20-character string seen earlier in the same output). The real
validation text is measured the same way, for reference; and each setting is also scored as a
model of that text: the real continuations' nats/char under the model with the rules applied to
its logits (teacher-forced), with the share of real characters the rules would never draw.

MIDI (chorale-satb): how often unconstrained samples put more than 4 notes in a step or a note
outside the SATB range (E2..G5 = 40..79), and the same with --max-polyphony 4 --min-pitch 40
--max-pitch 79 (nats/token: the samples' log-likelihood under the model without the rules).

    nice -n 10 python benchmarks/sample_quality.py [--samples 20] [--chars 500]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

import seqgen
from seqgen.generation.samples import load_model
from seqgen.kernels.constraints import apply_rules

ROOT = Path(__file__).resolve().parent.parent
TEXT_SETTINGS = {
    "off": {},
    "penalty 1.2, window 16": dict(repetition_penalty=1.2, repetition_window=16),
    "penalty 1.1, window 64": dict(repetition_penalty=1.1, repetition_window=64),
    "penalty 1.2, window 64": dict(repetition_penalty=1.2, repetition_window=64),
    "penalty 1.2, window 256": dict(repetition_penalty=1.2, repetition_window=256),
    "penalty 1.2, whole sample": dict(repetition_penalty=1.2),
    "penalty 1.5, window 16": dict(repetition_penalty=1.5, repetition_window=16),
    "no-repeat 8-gram": dict(no_repeat_ngram=8),
    "no-repeat 12-gram": dict(no_repeat_ngram=12),
    "penalty 1.2 w16 + 12-gram": dict(repetition_penalty=1.2, repetition_window=16, no_repeat_ngram=12),
}
LOOP = 20  # characters: an output "loops" where it ends a 20-character string it already holds
SATB = (40, 79)  # E2..G5: bass low E to soprano high G


def distinct(texts, n):
    """Distinct word n-grams / word n-grams, pooled over texts."""
    grams = [tuple(words[i:i + n]) for words in (t.split() for t in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


def looping(text):
    """Share of positions i >= LOOP whose preceding LOOP characters already occurred earlier."""
    seen, repeats = set(), 0
    for i in range(LOOP, len(text) + 1):
        piece = text[i - LOOP:i]
        repeats += piece in seen
        seen.add(piece)
    return repeats / max(1, len(text) - LOOP + 1)


def scored_under_rules(model, chunks, primer_chars, rules):
    """(nats/char of the real continuations under the model with ``rules`` applied to its
    logits, teacher-forced, over the characters the rules allow; share of characters the rules
    would never draw). The history of each position: everything before it, primer included."""
    V = model.config.vocab_size
    classes, mark, tick = np.zeros(V, np.uint8), np.zeros(V, np.int64), np.zeros(1, np.int64)
    adjusted = np.empty(V, np.float32)
    nll, scored, blocked = 0.0, 0, 0
    for ids in chunks:
        inputs, _, state = model._check_window(ids[:-1, None], None, None)
        logits = model._forward(inputs, state, None)[1]  # (T, V): logits[t] predicts ids[t + 1]
        for t in range(primer_chars - 1, len(ids) - 1):
            apply_rules(logits[t], adjusted, classes, 0, 0, rules.get("repetition_penalty", 1.0),
                        rules.get("repetition_window", 0), rules.get("no_repeat_ngram", 0), ids, t + 1, mark, tick)
            target = ids[t + 1]
            if np.isinf(adjusted[target]):
                blocked += 1
                continue
            finite = adjusted[np.isfinite(adjusted)].astype(np.float64)
            nll -= adjusted[target] - finite.max() - np.log(np.exp(finite - finite.max()).sum())
            scored += 1
    return nll / scored, blocked / (scored + blocked)


def text_rows(n_samples, chars, primer_chars):
    ckpt = load_model("shakespeare")
    corpus = (ROOT / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    valid = corpus[int(len(corpus) * 0.9):]
    starts = np.linspace(0, len(valid) - primer_chars - chars - 1, n_samples).astype(int)
    primers = [valid[s:s + primer_chars] for s in starts]
    reference = [valid[s + primer_chars:s + primer_chars + chars] for s in starts]
    chunks = [ckpt.tokenizer.encode(list(p + r)).astype(np.int32) for p, r in zip(primers, reference)]
    rows = [("validation text", [distinct(reference, k) for k in (1, 2, 3)], None, None,
             [distinct(reference, k) for k in (1, 2, 3)], float(np.mean([looping(t) for t in reference])), None)]
    for name, rules in TEXT_SETTINGS.items():
        common = dict(length=chars, stop="", include_prime=False, **rules)
        sampled = seqgen.sample(ckpt, n=n_samples, seed=1, **common)
        sampled_nll = -sum(s.logp for s in sampled) / sum(len(s.ids) for s in sampled)
        greedy = [seqgen.sample(ckpt, prime=p, greedy=True, seed=0, **common)[0] for p in primers]
        nll = -sum(s.logp for s in greedy) / sum(len(s.ids) for s in greedy)
        rows.append((name, [distinct([s.text for s in sampled], k) for k in (1, 2, 3)], sampled_nll, nll,
                     [distinct([s.text for s in greedy], k) for k in (1, 2, 3)],
                     float(np.mean([looping(s.text) for s in greedy])),
                     scored_under_rules(ckpt.model, chunks, primer_chars, rules)))
    return rows


def step_stats(tokens):
    """(steps, steps with more than 4 notes, notes, notes outside SATB) of poly tokens."""
    steps = over = notes = outside = 0
    count = 0
    for tok in tokens + ["<STEP>"]:
        if tok in ("<STEP>", "<END>"):
            steps += count > 0
            over += count > 4
            count = 0
        elif tok[:1] in ("p", "h"):
            pitch = int(tok[1:])
            count += 1
            notes += 1
            outside += not SATB[0] <= pitch <= SATB[1]
    return steps, over, notes, outside


def midi_rows(n_samples, length):
    ckpt = load_model("chorale-satb")
    corpus = [t for d in ckpt.tokenizer.read(ROOT / "corpora" / "jsb-chorales" / "satb" / "valid") for t in d]
    rows = [("validation chorales", *step_stats(corpus), None, None)]
    for name, rules in {"off": {}, "max_polyphony 4, pitch 40..79": dict(max_polyphony=4, min_pitch=SATB[0],
                                                                          max_pitch=SATB[1])}.items():
        samples = seqgen.sample(ckpt, n=n_samples, seed=1, length=length, **rules)
        per_sample = np.array([step_stats(s.tokens) for s in samples])
        nll = -sum(s.logp for s in samples) / sum(len(s.ids) for s in samples)
        broken = int(np.count_nonzero((per_sample[:, 1] > 0) | (per_sample[:, 3] > 0)))
        rows.append((name, *per_sample.sum(axis=0), nll, f"{broken} of {len(samples)}"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--chars", type=int, default=500)
    parser.add_argument("--primer", type=int, default=200, help="characters of each validation primer")
    parser.add_argument("--midi-length", type=int, default=1000, help="tokens per chorale sample at most")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; seqgen {seqgen.__version__}\n")
    print(f"shakespeare: {args.samples} samples x {args.chars} chars at temperature 1 (seed 1), and greedy from "
          f"{args.samples} validation primers of {args.primer} chars\n")
    print("| setting | sampled distinct-1/2/3 | sampled nats/char | greedy nats/char | greedy distinct-1/2/3 "
          "| greedy looping | validation nats/char under the rules (chars blocked) |")
    print("|---|---|---:|---:|---|---:|---:|")
    for name, d_s, nll_s, nll_g, d_g, loop, valid in text_rows(args.samples, args.chars, args.primer):
        fmt = "/".join(f"{x:.2f}" for x in d_s)
        scored = "" if valid is None else f"{valid[0]:.3f}" + (f" ({valid[1]:.1%})" if valid[1] else "")
        print(f"| {name} | {fmt} | {'' if nll_s is None else f'{nll_s:.3f}'} | "
              f"{'' if nll_g is None else f'{nll_g:.3f}'} | {'/'.join(f'{x:.2f}' for x in d_g)} | {loop:.0%} "
              f"| {scored} |")
    print(f"\nchorale-satb: {args.samples} samples (seed 1, at most {args.midi_length} tokens, temperature 1)\n")
    print("| setting | steps | steps with > 4 notes | notes | notes outside 40..79 | samples breaking either "
          "| nats/token |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, steps, over, notes, outside, nll, broken in midi_rows(args.samples, args.midi_length):
        print(f"| {name} | {steps} | {over} ({over / max(1, steps):.1%}) | {notes} | {outside} "
              f"({outside / max(1, notes):.1%}) | {broken or ''} | {'' if nll is None else f'{nll:.3f}'} |")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
