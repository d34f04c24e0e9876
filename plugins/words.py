"""`words`: words and punctuation marks as tokens, rare words as <UNK>."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.tokenizer import UNK, Option, Tokenizer, iter_text, read_text

# A word (letters/digits, with inner apostrophes as in "don't"), a line break, or any other
# single non-space character (punctuation); other whitespace only separates tokens.
TOKEN_RE = re.compile(r"\w+(?:['’]\w+)*|\n|[^\w\s]")
NO_SPACE_BEFORE = set(",.;:!?)]}%…") | {"\n"}
NO_SPACE_AFTER = set("([{$¿¡") | {"\n"}
JOINERS = set("-/—–")  # no space on either side: "well-known", "and/or"
QUOTES = {'"', "'", "“", "”", "‘", "’"}


class WordTokenizer(Tokenizer):
    """Words, punctuation and line breaks as tokens; vocabulary by min_count and max_vocab."""

    name = "words"
    output = "text"
    options = {
        "lower": Option(bool, True, "lowercase the text"),
        "min_count": Option(int, 1, "keep words seen at least this often; others become <UNK>", min=1),
        "max_vocab": Option(int, None, "keep at most this many tokens (specials included)", min=2),
        "separator": Option(str, None, 'token that ends an item, e.g. "\\n" (default: none)'),
    }

    def __init__(self, **options):
        super().__init__(**options)
        max_vocab = self.config["max_vocab"]
        if max_vocab is not None and max_vocab <= len(self.specials):
            raise ConfigError(f"option 'max_vocab' must exceed the {len(self.specials)} special tokens")

    @property
    def separator(self) -> str | None:
        return self.config["separator"] or None

    @property
    def specials(self) -> list[str]:
        return [UNK] + super().specials

    def read_file(self, path: Path) -> list[str]:
        tokens = self.parse_prime(read_text(path))
        if not any(tok != "\n" for tok in tokens):
            raise CorpusError(f"{path}: empty (no words)")
        return tokens

    def read_file_pieces(self, path: Path):
        for text in iter_text(path):
            yield self.parse_prime(text)

    def parse_prime(self, text: str) -> list[str]:
        return TOKEN_RE.findall(text.lower() if self.config["lower"] else text)

    def select_vocab(self, counts: Counter) -> list[str]:
        kept = [(tok, n) for tok, n in counts.items() if n >= self.config["min_count"]]
        if self.config["max_vocab"] is not None:
            kept.sort(key=lambda item: (-item[1], item[0]))
            kept = kept[: self.config["max_vocab"] - len(self.specials)]
        return sorted(tok for tok, _ in kept)

    def render(self, tokens: list[str]) -> str:
        """Tokens joined with natural spacing; prefix-stable (the space before a token depends
        only on it and the tokens before it). Quotes alternate opening/closing."""
        parts: list[str] = []
        quotes_open = 0
        prev = None
        for tok in tokens:
            if tok in QUOTES:
                opening = quotes_open % 2 == 0
                quotes_open += 1
                space = prev is not None and opening and prev not in NO_SPACE_AFTER
                parts.append(" " + tok if space else tok)
                prev = "(" if opening else ")"  # an opening quote glues to what follows
                continue
            space = (
                prev is not None
                and prev not in NO_SPACE_AFTER
                and prev not in JOINERS
                and tok not in NO_SPACE_BEFORE
                and tok not in JOINERS
            )
            parts.append(" " + tok if space else tok)
            prev = tok
        return "".join(parts)


@hookimpl
def register_tokenizers(register):
    register(WordTokenizer)
