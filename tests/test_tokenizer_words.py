"""The `words` tokenizer."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.host import get_tokenizer

Words = get_tokenizer("words")

TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019 \n\t,.;:!?()[]\"'’-/$%…éß")), max_size=80)


def test_words_punctuation_and_line_breaks():
    tokens = Words().parse_prime("Hello, World! Don't stop.\nNew line")
    assert tokens == ["hello", ",", "world", "!", "don't", "stop", ".", "\n", "new", "line"]
    assert Words(lower=False).parse_prime("Hi!") == ["Hi", "!"]


def test_render_uses_natural_spacing():
    text = 'She said: "Don\'t go (yet)!" — well-known, and/or $5 and 10%.\nNext line.'
    tok = Words(lower=False)
    assert tok.render(tok.parse_prime(text)) == (
        'She said: "Don\'t go (yet)!"—well-known, and/or $5 and 10%.\nNext line.'
    )


@given(TEXT)
def test_tokenize_render_round_trip(text):
    tok = Words()
    tokens = tok.parse_prime(text)
    assert tok.parse_prime(tok.render(tokens)) == tokens


@given(st.lists(st.sampled_from(["a", "b", ",", ".", "(", ")", '"', "-", "\n", "'"])),
       st.lists(st.sampled_from(["a", ",", '"', "\n"])))
def test_render_is_prefix_stable(a, b):
    tok = Words()
    assert tok.render(a + b).startswith(tok.render(a))


def test_vocab_min_count_and_unk():
    tok = Words(min_count=2)
    tok.fit([tok.parse_prime("the cat and the dog and the bird .")])
    assert tok.vocab == ["<UNK>", "and", "the"]
    assert tok.decode(tok.encode(tok.parse_prime("the fish"))) == ["the", "<UNK>"]


def test_vocab_max_size_keeps_most_frequent_ties_alphabetical():
    tok = Words(max_vocab=4)
    tok.fit([tok.parse_prime("b b a a c c c d")])
    assert tok.vocab == ["<UNK>", "a", "b", "c"]


def test_separator_is_special_and_appended(tmp_path):
    (tmp_path / "t.txt").write_text("one two\nthree")
    tok = Words(separator="\n", max_vocab=3)
    docs = tok.read(tmp_path / "t.txt")
    assert docs == [["one", "two", "\n", "three", "\n"]]
    tok.fit(docs)
    assert tok.vocab == ["<UNK>", "\n", "one"]
    assert Words().separator is None


def test_max_vocab_must_leave_room():
    with pytest.raises(ConfigError, match="max_vocab"):
        Words(max_vocab=1)
    with pytest.raises(ConfigError, match="max_vocab"):
        Words(max_vocab=2, separator="\n")
    with pytest.raises(ConfigError, match="min_count"):
        Words(min_count=0)


def test_fit_is_deterministic():
    a, b = Words(max_vocab=5), Words(max_vocab=5)
    a.fit([a.parse_prime("x y z y x w v")])
    b.fit([b.parse_prime("v w x y z y x")])
    assert a.vocab == b.vocab


@pytest.mark.parametrize("content, problem", [(b"\n\n", "empty"), (b"\xff\xfe\x00a", "binary")])
def test_bad_files(tmp_path, content, problem):
    (tmp_path / "w.txt").write_bytes(content)
    with pytest.raises(CorpusError, match=f"w.txt: {problem}"):
        Words().read(tmp_path / "w.txt")


def test_write_renders_text(tmp_path):
    tok = Words()
    tok.fit([tok.parse_prime("hello , world .")])
    tok.write(["hello", ",", "world", "."], tmp_path / "o.txt")
    assert (tmp_path / "o.txt").read_text() == "hello, world."
