"""Labelled corpora: the interface of tokenizers that supply labels as well as tokens.

A tokenizer plugin supplies labels by subclassing ``LabelledTokenizer``: it sets ``task``
("tag": one label per token; "classify": one label per item) and implements
``read_examples(path)``, which turns one file into ``Example``s, each with the line it starts
on. The same reader serves training (labels required), ``seqgen eval`` (labels required) and
``seqgen predict`` (labels optional: when present they are the gold standard printed beside the
prediction). The input tokens are the tokenizer's own; the vocabulary, ``<UNK>`` and
checkpointing are those of every tokenizer (see docs/tasks.md).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple

from seqgen.errors import CorpusError
from seqgen.plugins.tokenizer import UNK, Tokenizer, corpus_files


class Example(NamedTuple):
    """One item of a labelled corpus."""

    tokens: list  # input tokens
    labels: list | str | None  # tag: one label per token; classify: one label; None: unlabelled
    where: str  # "file:line" of its first line, for error messages
    text: str | None = None  # the item as written (classify), for output


class LabelledTokenizer(Tokenizer):
    """A tokenizer whose corpora carry labels; see the module docstring."""

    task: ClassVar[str]  # "tag" or "classify"

    @property
    def specials(self) -> list[str]:
        return [UNK]  # words unseen in training are labelled too

    @abstractmethod
    def read_examples(self, path: Path) -> list[Example]:
        """One file -> its examples; CorpusError naming the file and line if it is malformed.
        An example's labels are None when the file has no labels at all; a file that labels
        some items but not others is malformed."""

    def iter_examples(self, path: str | Path, labelled: bool = True) -> Iterator[Example]:
        """Every example of a corpus (file or directory). ``labelled``: refuse unlabelled ones,
        naming the file and line."""
        found = False
        for file in corpus_files(path, self.suffixes):
            for example in self.read_examples(file):
                if labelled and example.labels is None:
                    raise CorpusError(f"{example.where}: no labels: a {self.task} corpus for {self.name!r} "
                                      f"needs them ({self.label_format})")
                found = True
                yield example
        if not found:
            raise CorpusError(f"{path}: no examples")

    label_format: ClassVar[str] = ""  # how a labelled line looks, for error messages

    def read_file(self, path: Path) -> list[str]:
        """The input tokens of a file, items one after another (for fitting the vocabulary)."""
        tokens = [tok for example in self.read_examples(path) for tok in example.tokens]
        if not tokens:
            raise CorpusError(f"{path}: no tokens")
        return tokens
