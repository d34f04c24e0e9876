"""`chars`: one token per Unicode character (the dinosaur-names exercise)."""

from __future__ import annotations

from pathlib import Path

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.tokenizer import UNK, Option, Tokenizer, iter_text, read_text


class CharTokenizer(Tokenizer):
    """Characters as tokens; a document is one file's text; items end with `separator`."""

    name = "chars"
    output = "text"
    options = {
        "lower": Option(bool, False, "lowercase the text"),
        "unk": Option(bool, False, f"add {UNK} to the vocabulary; unknown characters map to it"),
        "separator": Option(str, "\n", 'character that ends an item ("" = no items)'),
    }

    def __init__(self, **options):
        super().__init__(**options)
        if len(self.config["separator"]) > 1:
            raise ConfigError(f"option 'separator' must be one character or empty, got {self.config['separator']!r}")

    @property
    def separator(self) -> str | None:
        return self.config["separator"] or None

    @property
    def specials(self) -> list[str]:
        return ([UNK] if self.config["unk"] else []) + super().specials

    def read_file(self, path: Path) -> list[str]:
        text = read_text(path)
        if not text.strip():
            raise CorpusError(f"{path}: empty (no text)")
        return self.parse_prime(text)

    def read_file_pieces(self, path: Path):
        for text in iter_text(path):
            yield self.parse_prime(text)

    def parse_prime(self, text: str) -> list[str]:
        return list(text.lower() if self.config["lower"] else text)

    def render(self, tokens: list[str]) -> str:
        return "".join(tokens)


@hookimpl
def register_tokenizers(register):
    register(CharTokenizer)
