"""Make the labelled corpora of the tagging and classification examples from files already in
corpora/ (all public domain), deterministically:

    python scripts/make_task_corpora.py

- corpora/tasks/punctuation/{train,valid,test}.conll — Pride and Prejudice without punctuation or
  capitals: one lower-cased word per line, labelled with what the original had: "O" (lower case,
  nothing follows), else "B-" + "CAP" if capitalised, joined by "_" with the mark that follows
  (COMMA ",", PERIOD "." or "!", QUESTION "?", COLON ";" or ":"), e.g. "B-CAP_PERIOD". Every
  non-O word is a one-word entity, so entity-level F1 is the F1 of the restored marks. Items:
  paragraphs cut into pieces of at most 30 words; split by position (first 80 % of the
  paragraphs train, next 10 % valid, last 10 % test).
- corpora/tasks/books/{train,valid,test}.tsv — "BOOK<TAB>text" lines: 12 consecutive words of
  Shakespeare (tinyshakespeare, speaker lines dropped), Austen (Pride and Prejudice) or Carroll
  (Alice in Wonderland), 2,000 pieces per book spread evenly through it, split by position.
- corpora/tasks/chorale-bass/{train,valid,test}.conll — the SATB chorales (their own split) on the
  16th-note grid: the soprano per step as the midi tokenizer's poly tokens ("p67" struck, "h67"
  held, "rest") and the bass pitch sounding at that step as the label ("50", or "rest").
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPORA = ROOT / "corpora"
OUT = CORPORA / "tasks"
MARKS = {",": "COMMA", ".": "PERIOD", "!": "PERIOD", "?": "QUESTION", ";": "COLON", ":": "COLON"}
WORD_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")


def _text(name):
    return (CORPORA / name).read_text(encoding="utf-8-sig").replace("\r\n", "\n")


def _splits(items):
    n = len(items)
    a, b = int(n * 0.8), int(n * 0.9)
    return {"train": items[:a], "valid": items[a:b], "test": items[b:]}


# ---------------------------------------------------------------- punctuation and capitals
def word_labels(paragraph):
    """A paragraph -> [(lower-cased word, label)]."""
    matches = list(WORD_RE.finditer(paragraph))
    out = []
    for i, m in enumerate(matches):
        word = m.group()
        gap = paragraph[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(paragraph)]
        mark = next((MARKS[ch] for ch in gap if ch in MARKS), None)
        parts = (["CAP"] if word[0].isupper() else []) + ([mark] if mark else [])
        out.append((word.lower(), "B-" + "_".join(parts) if parts else "O"))
    return out


def punctuation(max_words=30):
    paragraphs = [p for p in re.split(r"\n\s*\n", _text("pride_and_prejudice.txt")) if WORD_RE.search(p)]
    paragraphs = [p for p in paragraphs if not p.strip().upper().startswith("CHAPTER")]
    for split, part in _splits(paragraphs).items():
        lines = []
        for p in part:
            words = word_labels(" ".join(p.split()))
            for s in range(0, len(words), max_words):
                lines.extend(f"{w}\t{label}" for w, label in words[s:s + max_words])
                lines.append("")
        _write(OUT / "punctuation" / f"{split}.conll", lines)


# ---------------------------------------------------------------- which book
SPEAKER_RE = re.compile(r"^[A-Z][A-Za-z' ]*:$")


def book_pieces(text, n_pieces, words_per_piece=12):
    words = text.split()
    pieces = [" ".join(words[s:s + words_per_piece]) for s in range(0, len(words) - words_per_piece, words_per_piece)]
    step = len(pieces) / n_pieces
    return [pieces[int(i * step)] for i in range(n_pieces)]


def books(n_pieces=2000):
    shakespeare = "\n".join(line for line in _text("tinyshakespeare.txt").split("\n")
                            if not SPEAKER_RE.match(line.strip()))
    alice = _text("alice_in_wonderland.txt")
    alice = "\n".join(line for line in alice.split("\n") if not line.strip().upper().startswith("CHAPTER"))
    austen = "\n".join(line for line in _text("pride_and_prejudice.txt").split("\n")
                       if not line.strip().upper().startswith("CHAPTER"))
    by_book = {name: _splits(book_pieces(text, n_pieces))
               for name, text in (("shakespeare", shakespeare), ("austen", austen), ("carroll", alice))}
    for split in ("train", "valid", "test"):
        lines = [f"{name}\t{piece}" for name in by_book for piece in by_book[name][split]]
        _write(OUT / "books" / f"{split}.tsv", lines)


# ---------------------------------------------------------------- chorale bass
def _steps(tokens):
    """Poly tokens -> one list of tokens per grid step."""
    steps, current = [], []
    for tok in tokens:
        if tok == "<STEP>":
            steps.append(current)
            current = []
        elif tok != "<END>":
            current.append(tok)
    return steps


def chorale_bass():
    from seqgen_plugins.midi import MidiTokenizer

    soprano = MidiTokenizer(encoding="poly", track=0)
    bass = MidiTokenizer(encoding="poly", track=3)
    for split in ("train", "valid", "test"):
        lines = []
        for path in sorted((CORPORA / "jsb-chorales" / "satb" / split).glob("*.mid")):
            s_steps, b_steps = _steps(soprano.read_file(path)), _steps(bass.read_file(path))
            for s, b in zip(s_steps, b_steps):
                token = s[-1] if s else "rest"  # the highest soprano note
                label = b[0][1:] if b else "rest"  # the lowest bass pitch, struck or held
                lines.append(f"{token}\t{label}")
            lines.append("")
        _write(OUT / "chorale-bass" / f"{split}.conll", lines)


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {sum(1 for line in lines if line)} lines")


if __name__ == "__main__":
    punctuation()
    books()
    chorale_bass()
