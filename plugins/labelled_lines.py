"""`labelled`: one item per line as ``LABEL<TAB>TEXT`` for classification; the text is split
into tokens by another tokenizer (``input``: words or chars). Files for ``seqgen predict`` may
hold the text alone, one item per line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from seqgen.errors import CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.labelled import Example, LabelledTokenizer
from seqgen.plugins.tokenizer import Option, read_text


class LabelledLinesTokenizer(LabelledTokenizer):
    """``label<TAB>text`` lines; blank lines are skipped."""

    name = "labelled"
    output = "text"
    task = "classify"
    label_format = "LABEL<TAB>TEXT per line"
    options = {
        "input": Option(str, "words", "tokenizer of the text", choices=("words", "chars")),
        "lower": Option(bool, True, "lowercase the text"),
        "min_count": Option(int, 1, "keep tokens seen at least this often; others become <UNK>", min=1),
    }

    def __init__(self, **options):
        super().__init__(**options)
        from seqgen.plugins.host import get_tokenizer

        inner = {"lower": self.config["lower"]}
        if self.config["input"] == "chars":
            inner["separator"] = ""
        self.inner = get_tokenizer(self.config["input"])(**inner)

    def read_examples(self, path: Path) -> list[Example]:
        examples, kinds = [], set()
        for number, line in enumerate(read_text(path).split("\n"), 1):
            if not line.strip():
                continue
            label, tab, text = line.partition("\t")
            labelled = bool(tab)
            kinds.add(labelled)
            if len(kinds) > 1:
                raise CorpusError(f"{path}:{number}: " + (f"no label (expected {self.label_format}; earlier lines "
                                                          "have one)" if not labelled else
                                                          "a label where earlier lines have none"))
            if labelled and not label.strip():
                raise CorpusError(f"{path}:{number}: empty label (expected {self.label_format})")
            text = text if labelled else line
            tokens = self.parse_prime(text)
            if not tokens:
                raise CorpusError(f"{path}:{number}: no text after the label")
            examples.append(Example(tokens, label.strip() if labelled else None, f"{path}:{number}", text))
        if not examples:
            raise CorpusError(f"{path}: no lines (empty file)")
        return examples

    def select_vocab(self, counts: Counter) -> list[str]:
        return sorted(tok for tok, n in counts.items() if n >= self.config["min_count"])

    def parse_prime(self, text: str) -> list[str]:
        return [t for t in self.inner.parse_prime(text) if t != "\n"]

    def render(self, tokens: list[str]) -> str:
        return self.inner.render(tokens)


@hookimpl
def register_tokenizers(register):
    register(LabelledLinesTokenizer)
