"""The tokenizer interface that plugins implement, and helpers for reading corpora.

A tokenizer turns a corpus (one file or a directory of files) into documents (lists of token
strings), fits a vocabulary, maps tokens to int32 ids and back, and writes generated tokens out
(text, or a `.mid` file). See docs/tokenizers.md.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from seqgen.errors import ConfigError, CorpusError, TokenizerError
from seqgen.plugins import boundary

UNK = "<UNK>"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One tokenizer (or write) option: its type (bool, int, float or str), default and help.

    A default of None makes the option optional (None stays None). `choices`, `min` and `max`
    restrict the value.
    """

    type: type
    default: Any
    help: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None

    def convert(self, name: str, value: Any) -> Any:
        """`value` (a Python value, or a string from the command line) -> checked value."""
        if value is None and self.default is None:
            return None
        if isinstance(value, str) and self.type is not str:
            value = self._parse(name, value)
        elif self.type is float and isinstance(value, Integral) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ConfigError(
                f"option {name!r} must be {self.type.__name__}, got {type(value).__name__} {value!r}"
            )
        if self.choices and value not in self.choices:
            raise ConfigError(f"option {name!r} must be one of {list(self.choices)}, got {value!r}")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ConfigError(f"option {name!r} must be in [{self.min}, {self.max}], got {value!r}")
        return value

    def _parse(self, name: str, text: str) -> Any:
        if self.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ConfigError(f"option {name!r} must be true or false, got {text!r}")
        try:
            return self.type(text)
        except ValueError:
            raise ConfigError(f"option {name!r} must be {self.type.__name__}, got {text!r}") from None


def check_options(owner: str, spec: dict[str, Option], given: dict[str, Any]) -> dict[str, Any]:
    """Given option values -> complete, converted option dict; ConfigError on unknown names."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        valid = ", ".join(sorted(spec)) or "none"
        raise ConfigError(f"{owner}: unknown option(s) {', '.join(unknown)} (valid: {valid})")
    return {key: opt.convert(key, given.get(key, opt.default)) for key, opt in spec.items()}


def _kind(mode: int) -> str:
    """What a non-regular file is, for error messages."""
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | Path) -> BinaryIO:
    """Open a corpus or primer file for binary reading. CorpusError (one line, naming it) if it
    cannot be opened or is not a regular file: a FIFO, a device or a directory is refused
    before anything is read from it, so it can neither block nor stream forever."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorpusError(f"{path}: {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: str | Path) -> str:
    """A UTF-8 text file -> its text with line ends normalised to "\\n" (a BOM is dropped).

    CorpusError naming the file if it cannot be read, is not a regular file, is binary or is
    not UTF-8.
    """
    try:
        with open_regular(path) as f:
            data = f.read()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    if b"\x00" in data:
        raise CorpusError(f"{path}: binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


LARGE_FILE_BYTES = 64 << 20  # files larger than this are read in pieces (iter_text)
TEXT_PIECE_CHARS = 8 << 20  # about this many characters per piece


def iter_text(path: str | Path, piece_chars: int | None = None) -> Iterator[str]:
    """A UTF-8 text file in pieces of about ``piece_chars`` characters, each ending at a line
    break where there is one (so no word or line end is cut), line ends normalised as by
    `read_text`. The whole file is checked first, a block at a time, so a binary or non-UTF-8
    file fails with CorpusError before any piece is returned."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open_regular(path) as f:
            while block := f.read(1 << 20):
                if b"\x00" in block:
                    raise CorpusError(f"{path}: binary file (contains NUL bytes), not text")
                decoder.decode(block)
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {offset + e.start})") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    return _text_pieces(path, piece_chars or TEXT_PIECE_CHARS)


def _text_pieces(path, piece_chars):
    carry = ""
    # newline=None: \r\n and \r -> \n
    with io.TextIOWrapper(open_regular(path), encoding="utf-8-sig", newline=None) as f:
        while block := f.read(piece_chars):
            text = carry + block
            cut = text.rfind("\n") + 1 or max(text.rfind(" "), text.rfind("\t")) + 1 or len(text)
            carry = text[cut:]
            yield text[:cut]
    if carry:
        yield carry


def corpus_files(path: str | Path, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """A file -> [it]; a directory -> its non-hidden files (recursively, sorted), only those with
    one of `suffixes` (case-insensitive) when given. CorpusError if there are none, or if
    `path` is neither a regular file nor a directory; in a directory, entries that are not
    regular files (FIFOs, devices) are skipped with a warning naming them."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise CorpusError(f"{path}: no such file or directory") from None
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    if stat.S_ISREG(mode):
        return [path]
    if not stat.S_ISDIR(mode):
        raise CorpusError(f"{path}: {_kind(mode)}, not a regular file or a directory")
    files = []
    for p in sorted(path.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(path).parts):
            continue
        if suffixes and p.suffix.lower() not in suffixes:
            continue
        try:
            mode = p.stat().st_mode
        except OSError as e:  # e.g. a dangling symbolic link
            warnings.warn(f"skipping {p}: cannot read ({e.strerror or e})", stacklevel=3)
            continue
        if stat.S_ISREG(mode):
            files.append(p)
        elif not stat.S_ISDIR(mode):
            warnings.warn(f"skipping {p}: {_kind(mode)}, not a regular file", stacklevel=3)
    if not files:
        kind = " or ".join(suffixes) + " files" if suffixes else "files"
        raise CorpusError(f"{path}: directory has no {kind}")
    return files


@dataclass(frozen=True)
class TokenClasses:
    """What a tokenizer tells the sampler about its vocabulary, for the note rules of sampling
    (``min_pitch``/``max_pitch``, ``max_polyphony``). Arrays are indexed by token id.

    pitch: (V,) integers, the MIDI pitch (0-127) a token sounds, -1 for a token that sounds
    none (a rest, <STEP>, <END>). step_end: (V,) bools, the tokens that close a time step
    (poly's <STEP> and <END>): the notes between two of them sound together; None when the
    encoding has no steps of several notes (melody: one token, one note)."""

    pitch: np.ndarray
    step_end: np.ndarray | None = None


class Tokenizer(ABC):
    """Base class of all tokenizers (see docs/tokenizers.md).

    Subclasses set `name`, `output`, `options` (and `write_options`, `suffixes`), implement
    `read_file` and `render`, and usually `parse_prime` and the `separator` property.
    """

    name: ClassVar[str]
    output: ClassVar[str] = "text"  # what write() produces: "text" or "midi"
    options: ClassVar[dict[str, Option]] = {}
    write_options: ClassVar[dict[str, Option]] = {}
    suffixes: ClassVar[tuple[str, ...]] = ()  # files read from a directory corpus; () = all

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the plugin-facing methods a subclass defines so that what they return (or
        raise) is checked at the boundary; see seqgen.plugins.boundary."""
        super().__init_subclass__(**kwargs)
        boundary.wrap_methods(cls)

    def __init__(self, **options: Any) -> None:
        self.config: dict[str, Any] = check_options(f"tokenizer {self.name!r}", self.options, options)
        self.vocab: list[str] = []
        self._ids: dict[str, int] = {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({opts})"

    @property
    def separator(self) -> str | None:
        """The token that ends an item (a name, a tune), or None if items have no structure."""
        return None

    @property
    def separator_id(self) -> int | None:
        """The separator's id in the fitted vocabulary, or None without a separator."""
        return None if self.separator is None else self._ids[self.separator]

    @property
    def specials(self) -> list[str]:
        """Tokens that are always in the vocabulary, first and in this order."""
        return [self.separator] if self.separator is not None else []

    # -- reading ---------------------------------------------------------------------------

    @abstractmethod
    def read_file(self, path: Path) -> list[str]:
        """One corpus file -> its tokens. CorpusError naming the file if it is unusable."""

    def read_file_pieces(self, path: Path) -> Iterator[list[str]]:
        """A file too large to hold whole (over LARGE_FILE_BYTES) -> its tokens in pieces. The
        default reads it whole; text tokenizers override it with `iter_text`."""
        yield self.read_file(path)

    def read(self, path: str | Path) -> list[list[str]]:
        """A corpus file or directory -> documents (one per file), each a list of tokens ending
        with the separator (when there is one). Unusable files in a directory are skipped with
        a warning; CorpusError if none is usable."""
        return list(self.iter_documents(path))

    def iter_documents(self, path: str | Path) -> Iterator[list[str]]:
        """Like `read`, one document at a time, so a large directory corpus is never held in
        memory whole."""
        files = corpus_files(path, self.suffixes)
        used, bad = 0, 0
        for file in files:
            try:
                if file.stat().st_size > LARGE_FILE_BYTES:
                    yield from self._pieces_of(file)
                    used += 1
                    continue
                tokens = self.read_file(file)
                if not tokens:
                    raise CorpusError(f"{file}: no tokens (empty file)")
            except CorpusError as e:
                if Path(path).is_file():
                    raise
                warnings.warn(f"skipping {e}", stacklevel=2)
                bad += 1
                continue
            if self.separator is not None and tokens[-1:] != [self.separator]:
                tokens.append(self.separator)
            used += 1
            yield tokens
        if not used:
            raise CorpusError(f"{path}: no usable files ({bad} skipped)")
        if bad:
            warnings.warn(f"{path}: skipped {bad} of {len(files)} files", stacklevel=2)

    def _pieces_of(self, file: Path) -> Iterator[list[str]]:
        """A large file's tokens in pieces, the separator after the last one."""
        pieces = self.read_file_pieces(file)
        piece = next(pieces, [])
        for following in pieces:
            yield piece
            piece = following
        if self.separator is not None and piece[-1:] != [self.separator]:
            piece = piece + [self.separator]
        yield piece

    def parse_prime(self, text: str) -> list[str]:
        """A user's prime text -> tokens (not checked against the vocabulary)."""
        raise TokenizerError(f"tokenizer {self.name!r} cannot take a text prime")

    def read_prime(self, path: str | Path) -> list[str]:
        """A primer file -> tokens; text tokenizers parse its text (midi reads a .mid, no <END>)."""
        return self.parse_prime(read_text(path))

    def prime_write_options(self, path: str | Path) -> dict[str, Any]:
        """Write options that a sample primed with the file at `path` should be written with
        (e.g. the primer's tempo for midi), to be overridden by options given explicitly.
        The base class has none."""
        return {}

    def token_classes(self) -> TokenClasses | None:
        """The classes of the fitted vocabulary's tokens (`TokenClasses`), or None when its
        tokens are not notes, so the note rules of sampling do not apply. The base class: None."""
        return None

    # -- augmentation ----------------------------------------------------------------------

    def augment(self, documents: Iterable[list[str]]) -> Iterable[list[str]]:
        """Training documents (items, each ending with the separator) -> the documents to train
        on: them and any altered copies (e.g. midi's transpositions). Training calls it on the
        training items only, never on validation data, and on the whole corpus before fitting
        the vocabulary, so the copies of a subset of it must only hold tokens its copies of the
        whole corpus hold. Deterministic. The default trains on the documents as they are."""
        return documents

    @property
    def augments(self) -> bool:
        """Whether `augment` may change the training data (with these options); when False,
        training skips the pass that decodes, augments and re-encodes the training ids."""
        return type(self).augment is not Tokenizer.augment

    # -- vocabulary ------------------------------------------------------------------------

    def fit(self, documents: Iterable[list[str]]) -> None:
        """Set `vocab` from documents (any iterable, read once); see `fit_counts`."""
        self.fit_counts(Counter(tok for doc in documents for tok in doc))

    def fit_counts(self, counts: Counter) -> None:
        """Set `vocab` from token counts: `specials` first, then `select_vocab(counts)`."""
        counts = Counter(counts)
        if not counts:
            raise CorpusError("cannot fit a vocabulary on an empty corpus")
        for tok in self.specials:
            counts.pop(tok, None)
        self._set_vocab(self.specials + self.select_vocab(counts))

    def select_vocab(self, counts: Counter) -> list[str]:
        """Token counts (specials removed) -> the non-special vocabulary, sorted."""
        return sorted(counts)

    def _set_vocab(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self._ids = {tok: i for i, tok in enumerate(self.vocab)}

    def _check_fitted(self) -> None:
        if not self.vocab:
            raise TokenizerError(f"tokenizer {self.name!r} has no vocabulary (call fit first)")

    def encode(self, tokens: list[str], unknown: str | None = None) -> np.ndarray:
        """Tokens -> int32 ids, shape (len(tokens),) ("skip" may drop some).

        unknown: "error" raises TokenizerError listing the unknown tokens, "unk" maps them to
        <UNK> (error if the vocabulary has none), "skip" drops them; None = "unk" when the
        vocabulary has <UNK>, else "error".
        """
        self._check_fitted()
        if unknown is None:
            unknown = "unk" if UNK in self._ids else "error"
        if unknown not in ("error", "unk", "skip"):
            raise ConfigError(f"unknown must be 'error', 'unk' or 'skip', got {unknown!r}")
        ids = self._ids
        missing = {tok for tok in tokens if tok not in ids}
        if missing and unknown == "error":
            shown = ", ".join(repr(t) for t in sorted(missing)[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise TokenizerError(
                f"{len(missing)} token(s) not in the {self.name!r} vocabulary: {shown}{more}"
            )
        if missing and unknown == "unk":
            if UNK not in ids:
                raise TokenizerError(f"tokenizer {self.name!r} has no {UNK} token to map unknown tokens to")
            return np.array([ids.get(tok, ids[UNK]) for tok in tokens], dtype=np.int32)
        return np.array([ids[tok] for tok in tokens if tok in ids], dtype=np.int32)

    def decode(self, ids) -> list[str]:
        """Ids (ints, any integer array) -> tokens; TokenizerError on an id outside the vocab."""
        self._check_fitted()
        ids = np.asarray(ids, dtype=np.int64).ravel()
        bad = ids[(ids < 0) | (ids >= len(self.vocab))]
        if bad.size:
            raise TokenizerError(f"id {int(bad[0])} outside the vocabulary (size {len(self.vocab)})")
        return [self.vocab[i] for i in ids]

    # -- output ----------------------------------------------------------------------------

    @abstractmethod
    def render(self, tokens: list[str]) -> str:
        """Tokens -> human-readable text; prefix-stable (render(a + b) starts with render(a))."""

    def write(self, ids_or_tokens, path: str | Path, **write_options: Any) -> None:
        """Ids or tokens -> a file at `path` (text, or a `.mid` for output == "midi").

        Write options are checked against `write_options` (ConfigError on bad ones).
        Malformed sequences are repaired, not rejected.
        """
        config = check_options(f"writing with {self.name!r}", self.write_options, write_options)
        seq = list(ids_or_tokens)
        tokens = self.decode(seq) if seq and isinstance(seq[0], Integral) else [str(t) for t in seq]
        try:
            self.write_tokens(tokens, Path(path), **config)
        except OSError as e:
            raise TokenizerError(f"{path}: cannot write ({e.strerror or e})") from None

    def write_tokens(self, tokens: list[str], path: Path, **config: Any) -> None:
        """Write checked tokens to `path`; the default writes render(tokens) as UTF-8 text."""
        path.write_text(self.render(tokens), encoding="utf-8")

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        """-> {"name", "module", "options", "vocab"}: plain JSON-able data for a checkpoint."""
        return {
            "name": self.name,
            "module": type(self).__module__,
            "options": dict(self.config),
            "vocab": list(self.vocab),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        """to_dict() output -> an equal, fitted tokenizer. TokenizerError if it does not fit."""
        if d.get("name") != cls.name:
            raise TokenizerError(f"tokenizer data is for {d.get('name')!r}, not {cls.name!r}")
        tok = cls(**d.get("options", {}))
        vocab = d.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise TokenizerError(f"tokenizer {cls.name!r}: vocab must be a list of strings")
        if len(set(vocab)) != len(vocab) or vocab[: len(tok.specials)] != tok.specials:
            raise TokenizerError(
                f"tokenizer {cls.name!r}: vocab has duplicates or does not start with {tok.specials}"
            )
        tok._set_vocab(vocab)
        return tok
