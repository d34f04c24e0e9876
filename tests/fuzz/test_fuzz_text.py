"""Fuzzing the text readers (chars, words): binary data, invalid UTF-8, huge lines, empty files,
read whole and in pieces. Whatever the bytes: tokens or a one-line CorpusError naming the file.
Seeded (derandomized hypothesis) and bounded."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqgen.plugins.tokenizer as tokenizer_module
from seqgen.errors import CorpusError
from seqgen.plugins.host import get_tokenizer

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
TOKENIZERS = [("chars", {}), ("chars", {"lower": True, "separator": ""}), ("words", {}), ("words", {"separator": "\n"})]
NASTY = [
    b"", b"\n", b"\r\n\r", b" \t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\x00", b"abc\x00def",
    b"\xff\xfe", b"\xc3", b"caf\xe9", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\n\xc3\x28",
    "dinosaur\u2028name\u0085\n".encode(), "é".encode() * 1000, b"x" * 3_000_000, b"a b\n" * 200_000,
    b"\r" * 100_000, bytes(range(1, 256)),
]


def read_or_refuse(path, name, options):
    """-> tokens, or the CorpusError message; any other exception fails the test."""
    tok = get_tokenizer(name)(**options)
    try:
        docs = tok.read(path)
    except CorpusError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e), str(e)
        return str(e)
    assert len(docs) == 1 and docs[0] and all(isinstance(t, str) for t in docs[0])
    return docs[0]


@pytest.mark.parametrize("name, options", TOKENIZERS)
@pytest.mark.parametrize("index", range(len(NASTY)))
def test_nasty_files(tmp_path, name, options, index):
    path = tmp_path / "corpus.txt"
    path.write_bytes(NASTY[index])
    read_or_refuse(path, name, options)


@FUZZ
@given(data=st.binary(max_size=4000), which=st.sampled_from(TOKENIZERS))
def test_any_bytes(tmp_path, data, which):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    read_or_refuse(path, *which)


@FUZZ
@given(text=st.text(max_size=2000), flips=st.lists(st.tuples(st.integers(0), st.integers(0, 7)), max_size=4),
       which=st.sampled_from(TOKENIZERS))
def test_mutated_text(tmp_path, text, flips, which):
    raw = bytearray(text.encode())
    for at, bit in flips:
        if raw:
            raw[at % len(raw)] ^= 1 << bit
    path = tmp_path / "corpus.txt"
    path.write_bytes(bytes(raw))
    read_or_refuse(path, *which)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8"), min_size=1, max_size=3000), crlf=st.booleans())
def test_large_file_pieces_give_the_same_characters(tmp_path, text, crlf):
    """Files over LARGE_FILE_BYTES are read in pieces; for chars the pieces join to exactly the
    tokens of reading the file whole (pieces here: 64 characters, so lines and words are cut)."""
    raw = text.replace("\n", "\r\n" if crlf else "\n").encode()
    path = tmp_path / "corpus.txt"
    path.write_bytes(raw)
    whole = read_or_refuse(path, "chars", {})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tokenizer_module, "LARGE_FILE_BYTES", 16)
        mp.setattr(tokenizer_module, "TEXT_PIECE_CHARS", 64)
        try:
            pieces = [tok for doc in get_tokenizer("chars")().read(path) for tok in doc]
        except CorpusError as e:
            pieces = str(e)
    if isinstance(whole, list):
        assert pieces == whole
    else:  # refused whole (empty, NUL) -> a piecewise read is refused too, or has no content
        assert isinstance(pieces, str) or not "".join(pieces).strip()


def test_huge_lines_in_pieces(tmp_path, monkeypatch):
    """A 2 MB line with no break or space in a 'large' file: cut where it must be, nothing lost."""
    monkeypatch.setattr(tokenizer_module, "LARGE_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(tokenizer_module, "TEXT_PIECE_CHARS", 1 << 18)
    rng = random.Random(0)
    line = "".join(rng.choice("abcdé") for _ in range(2 << 20))
    path = tmp_path / "corpus.txt"
    path.write_text(line + "\n" + line, encoding="utf-8")
    docs = get_tokenizer("chars")().read(path)
    assert sum(len(d) for d in docs) == 2 * len(line) + 2  # both lines, the break, the separator
    words = get_tokenizer("words")().read(path)
    assert "\n" in (tok for doc in words for tok in doc)
