"""`conll`: the CoNLL column format for tagging: one token per line with its label in the last
column (columns split by tabs or spaces), a blank line between sentences, ``-DOCSTART-`` lines
skipped. Files for ``seqgen predict`` may leave the label column out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from seqgen.errors import CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.labelled import Example, LabelledTokenizer
from seqgen.plugins.tokenizer import Option, read_text


class ConllTokenizer(LabelledTokenizer):
    """Tokens from the first column, labels from the last; a sentence is an item."""

    name = "conll"
    output = "text"
    task = "tag"
    label_format = "TOKEN LABEL per line, a blank line between sentences"
    options = {
        "lower": Option(bool, False, "lowercase the tokens"),
        "min_count": Option(int, 1, "keep tokens seen at least this often; others become <UNK>", min=1),
    }

    def read_examples(self, path: Path) -> list[Example]:
        examples, tokens, labels, start = [], [], [], None
        kinds = set()  # whether lines carry labels: a file must be consistent

        def flush():
            if tokens:
                examples.append(Example(list(tokens), list(labels) if labels else None, f"{path}:{start}"))
            tokens.clear()
            labels.clear()

        for number, line in enumerate(read_text(path).split("\n"), 1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                flush()
                continue
            if start is None or not tokens:
                start = number
            labelled = len(columns) > 1
            kinds.add(labelled)
            if len(kinds) > 1:
                raise CorpusError(f"{path}:{number}: no label column (expected {self.label_format}; "
                                  f"earlier lines have one)" if not labelled else
                                  f"{path}:{number}: a label column where earlier lines have none")
            token = columns[0].lower() if self.config["lower"] else columns[0]
            tokens.append(token)
            if labelled:
                labels.append(columns[-1])
        flush()
        if not examples:
            raise CorpusError(f"{path}: no tokens (empty file)")
        return examples

    def select_vocab(self, counts: Counter) -> list[str]:
        return sorted(tok for tok, n in counts.items() if n >= self.config["min_count"])

    def parse_prime(self, text: str) -> list[str]:
        return (text.lower() if self.config["lower"] else text).split()

    def render(self, tokens: list[str]) -> str:
        return " ".join(tokens)


@hookimpl
def register_tokenizers(register):
    register(ConllTokenizer)
