"""The `chars` tokenizer."""

import json
import os

import numpy as np
import pytest
from conftest import call_unblocked
from hypothesis import given
from hypothesis import strategies as st

from seqgen.errors import ConfigError, CorpusError, TokenizerError
from seqgen.plugins.host import get_tokenizer
from seqgen.plugins.tokenizer import iter_text, read_text

Chars = get_tokenizer("chars")


def fitted(text, **options):
    tok = Chars(**options)
    tok.fit([tok.parse_prime(text)])
    return tok


def test_reads_a_file_into_one_document(tmp_path):
    (tmp_path / "dinos.txt").write_text("Aachenosaurus\r\nAardonyx\r\nAbelisaurus")
    tok = Chars(lower=True)
    docs = tok.read(tmp_path / "dinos.txt")
    assert docs == [list("aachenosaurus\naardonyx\nabelisaurus\n")]  # CRLF -> LF, separator appended
    tok.fit(docs)
    assert tok.vocab[0] == "\n" and tok.vocab[1:] == sorted(set("aachenosaurusardonyxbelis"))
    assert tok.separator == "\n"


def test_vocab_is_deterministic_and_specials_come_first():
    a, b = fitted("zyx\nabc", unk=True), fitted("cba\nxyz", unk=True)
    assert a.vocab == b.vocab == ["<UNK>", "\n", "a", "b", "c", "x", "y", "z"]


@given(st.text(min_size=1))
def test_encode_decode_round_trip(text):
    tok = fitted(text)
    ids = tok.encode(list(text))
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert tok.render(tok.decode(ids)) == text


@given(st.text(), st.text())
def test_render_is_prefix_stable(a, b):
    tok = Chars()
    assert tok.render(list(a + b)).startswith(tok.render(list(a)))


def test_unknown_characters_are_an_error_listing_them():
    tok = fitted("abc\n")
    with pytest.raises(TokenizerError, match=r"2 token\(s\) not in the 'chars' vocabulary: 'x', 'é'"):
        tok.encode(list("abxéx"))


def test_unknown_characters_map_to_unk_when_asked():
    tok = fitted("abc\n", unk=True)
    assert tok.decode(tok.encode(list("axb"))) == ["a", "<UNK>", "b"]
    plain = fitted("abc\n")
    with pytest.raises(TokenizerError, match="no <UNK>"):
        plain.encode(list("axb"), unknown="unk")
    assert plain.decode(plain.encode(list("axb"), unknown="skip")) == ["a", "b"]
    with pytest.raises(TokenizerError, match="'x'"):
        fitted("abc\n", unk=True).encode(list("ax"), unknown="error")


def test_lower_option():
    assert Chars(lower=True).parse_prime("AbC") == ["a", "b", "c"]
    assert Chars().parse_prime("AbC") == ["A", "b", "C"]


def test_separator_option():
    assert Chars(separator="").separator is None
    assert Chars(separator=".").specials == ["."]
    with pytest.raises(ConfigError, match="one character"):
        Chars(separator="ab")


@pytest.mark.parametrize("options, match", [
    ({"lower": "maybe"}, "true or false"),
    ({"unk": 3}, "must be bool"),
    ({"colour": True}, r"unknown option\(s\) colour \(valid: lower, separator, unk\)"),
])
def test_bad_options(options, match):
    with pytest.raises(ConfigError, match=match):
        Chars(**options)


def test_string_options_are_converted():
    assert Chars(lower="true", unk="0").config == {"lower": True, "unk": False, "separator": "\n"}


def test_to_dict_from_dict_is_json_and_equal():
    tok = fitted("Hello\n", lower=True, unk=True)
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["name"] == "chars" and d["options"]["lower"] is True
    again = Chars.from_dict(d)
    assert again.vocab == tok.vocab
    np.testing.assert_array_equal(again.encode(list("hello?")), tok.encode(list("hello?")))


def test_from_dict_rejects_a_vocab_that_does_not_fit():
    d = fitted("ab\n", unk=True).to_dict()
    d["vocab"] = ["a", "b"]
    with pytest.raises(TokenizerError, match="does not start with"):
        Chars.from_dict(d)


def test_decode_rejects_out_of_range_ids():
    with pytest.raises(TokenizerError, match="id 7 outside"):
        fitted("ab").decode([0, 7])


def test_encode_before_fit_is_an_error():
    with pytest.raises(TokenizerError, match="call fit first"):
        Chars().encode(["a"])


def test_write_text(tmp_path):
    tok = fitted("ab\n")
    tok.write(tok.encode(list("ba\nab")), tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "ba\nab"
    with pytest.raises(ConfigError, match="unknown option"):
        tok.write(["a"], tmp_path / "x.txt", tempo=100)


def test_read_prime_reads_text(tmp_path):
    (tmp_path / "p.txt").write_text("Ab")
    assert Chars(lower=True).read_prime(tmp_path / "p.txt") == ["a", "b"]


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b" \n\n\t ", "empty"),
    (b"abc\x00def", "binary file"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_bad_files(tmp_path, content, problem):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=rf"bad.txt: {problem}"):
        Chars().read(path)


def test_directory_skips_bad_files_with_warnings(tmp_path):
    (tmp_path / "a.txt").write_text("abc\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    (tmp_path / "c.txt").write_text("")
    (tmp_path / ".hidden").write_bytes(b"\x00")
    with pytest.warns(UserWarning) as record:
        docs = Chars().read(tmp_path)
    assert docs == [list("abc\n")]
    messages = [str(w.message) for w in record]
    assert any("b.bin: binary file" in m for m in messages)
    assert any("c.txt: empty" in m for m in messages)
    assert any("skipped 2 of 3 files" in m for m in messages)


def test_directory_with_no_usable_file_fails(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    with pytest.warns(UserWarning, match="b.bin"), pytest.raises(CorpusError, match=r"no usable files \(1 skipped\)"):
        Chars().read(tmp_path)


def test_empty_directory_fails(tmp_path):
    with pytest.raises(CorpusError, match="directory has no files"):
        Chars().read(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_before_it_is_read(tmp_path):
    """A FIFO as corpus, primer, or piecewise-read file: one line at once (reading it waited for
    a writer forever)."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for call in (Chars().read, Chars().read_prime, read_text, lambda p: list(iter_text(p)),
                 lambda p: get_tokenizer("words")().read(p)):
        error = call_unblocked(call, fifo, fifo=fifo)
        assert isinstance(error, CorpusError), error
        assert str(error) in (f"{fifo}: a FIFO (named pipe), not a regular file",
                              f"{fifo}: a FIFO (named pipe), not a regular file or a directory")


def test_a_device_is_refused_as_a_corpus():
    """/dev/zero: refused, not read until memory runs out (and not "no such file")."""
    for call in (Chars().read, read_text, Chars().read_prime):
        error = call_unblocked(call, "/dev/zero")
        assert isinstance(error, CorpusError) and "/dev/zero: a character device, not a regular file" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_directory_skips_a_fifo_and_a_dangling_link_with_warnings(tmp_path):
    (tmp_path / "a.txt").write_text("abc\n")
    os.mkfifo(tmp_path / "b.txt")
    (tmp_path / "c.txt").symlink_to(tmp_path / "missing.txt")
    with pytest.warns(UserWarning) as record:
        docs = call_unblocked(Chars().read, tmp_path, fifo=tmp_path / "b.txt")
    assert docs == [list("abc\n")]
    messages = [str(w.message) for w in record]
    assert f"skipping {tmp_path / 'b.txt'}: a FIFO (named pipe), not a regular file" in messages
    assert f"skipping {tmp_path / 'c.txt'}: cannot read (No such file or directory)" in messages
