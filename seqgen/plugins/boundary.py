"""Checks at the plugin boundary: what a tokenizer plugin's methods return or raise.

`Tokenizer.__init_subclass__` wraps the methods below of every subclass that defines them, so
every call site gets checked results: a wrong type, or an exception that is not one of
seqgen's own, becomes a one-line `PluginError` naming the plugin, the class and the method
(instead of a traceback from deep inside seqgen, or a checkpoint that can never be loaded).
A file that cannot be read or decoded inside `read_file` becomes a `CorpusError` naming the
file, so a directory corpus skips it like any other unusable file. See docs/plugins.md.
"""

from __future__ import annotations

import functools
import os
import reprlib
import sys
import traceback

import numpy as np

from seqgen.errors import CorpusError, PluginError, SeqgenError

TRACE_ENV = "SEQGEN_TRACE_PLUGINS"
_TRUE = {"1", "true", "yes", "on"}

# method -> what it must return: "tokens" (a list of str), "text" (a str), "pieces" (an
# iterable of token lists, checked as they are taken), "options" (a dict of the write options),
# "classes" (None or a TokenClasses that fits the vocabulary) or None (anything; only exceptions
# are translated)
CHECKED = {
    "read_file": "tokens",
    "read_file_pieces": "pieces",
    "augment": "pieces",
    "read_prime": "tokens",
    "parse_prime": "tokens",
    "select_vocab": "tokens",
    "render": "text",
    "write_tokens": None,
    "prime_write_options": "options",
    "token_classes": "classes",
}
_READS_FILES = {"read_file", "read_file_pieces", "read_prime", "prime_write_options"}  # their first argument is a path

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlist = 4


def tracing() -> bool:
    """Whether SEQGEN_TRACE_PLUGINS asks for plugin tracing (hook calls, tracebacks)."""
    return os.environ.get(TRACE_ENV, "").strip().lower() in _TRUE


def wrap_methods(cls: type) -> None:
    """Replace the checked methods that `cls` itself defines with checking wrappers."""
    for method, kind in CHECKED.items():
        fn = cls.__dict__.get(method)
        if callable(fn) and not getattr(fn, "_seqgen_checked", False):
            setattr(cls, method, _wrap(cls, method, kind, fn))


def _wrap(owner: type, method: str, kind: str | None, fn):
    reads_file = method in _READS_FILES

    def fail(self, e, args):
        if method == "write_tokens" and isinstance(e, OSError):
            return e  # Tokenizer.write reports it as "PATH: cannot write"
        if reads_file and args and isinstance(e, (OSError, UnicodeDecodeError)):
            return _unreadable(args[0], e)
        return _raised(self, owner, method, e)

    def call(self, args, kwargs):
        try:
            return fn(self, *args, **kwargs)
        except SeqgenError:
            raise
        except Exception as e:
            raise fail(self, e, args) from e

    @functools.wraps(fn)
    def checked(self, *args, **kwargs):
        out = call(self, args, kwargs)
        if kind == "text":  # render runs once per streamed token: one type test on the way out
            if not isinstance(out, str):
                raise _wrong(self, owner, method, out, "a str")
        elif kind == "pieces":  # checked piece by piece as they are read
            try:
                pieces = iter(out)
            except TypeError as e:
                raise fail(self, e, args) from e
            return _checked_pieces(self, owner, method, pieces, args, fail)
        elif kind == "tokens":
            check_tokens(self, owner, method, out)
        elif kind == "options" and not (isinstance(out, dict) and all(k in self.write_options for k in out)):
            raise _wrong(self, owner, method, out, "a dict of its write options")
        elif kind == "classes" and out is not None:
            check_classes(self, owner, method, out)
        return out

    checked._seqgen_checked = True
    return checked


def _checked_pieces(self, owner, method, pieces, args, fail):
    while True:
        try:
            piece = next(pieces)
        except StopIteration:
            return
        except SeqgenError:
            raise
        except Exception as e:
            raise fail(self, e, args) from e
        check_tokens(self, owner, method, piece)
        yield piece


def check_tokens(tok, owner: type, method: str, out) -> None:
    """PluginError unless `out` is a list of str."""
    if not isinstance(out, list):
        raise _wrong(tok, owner, method, out, "a list of str tokens")
    try:
        "".join(out)  # in C: about 4x faster than a type test per token, and exact
    except TypeError:
        bad = next(t for t in out if not isinstance(t, str))
        raise PluginError(
            f"{_where(tok, owner, method)} returned a list holding {type(bad).__name__} "
            f"{_short.repr(bad)}; tokens must be str"
        ) from None


def check_classes(tok, owner: type, method: str, out) -> None:
    """PluginError unless `out` is a TokenClasses whose arrays fit the vocabulary: pitch (V,)
    integers in [-1, 127], step_end None or (V,) bools."""
    from seqgen.plugins.tokenizer import TokenClasses

    if not isinstance(out, TokenClasses):
        raise _wrong(tok, owner, method, out, "a TokenClasses or None")
    V = len(tok.vocab)
    pitch, step_end = np.asarray(out.pitch), out.step_end
    problem = None
    if pitch.shape != (V,) or not np.issubdtype(pitch.dtype, np.integer):
        problem = f"pitch must be ({V},) integers (one per vocabulary token), got {pitch.dtype} {pitch.shape}"
    elif V and (pitch.min() < -1 or pitch.max() > 127):
        problem = "pitch values must be MIDI pitches 0-127, or -1 for tokens that are not notes"
    elif step_end is not None and (np.shape(step_end) != (V,) or np.asarray(step_end).dtype != np.bool_):
        problem = f"step_end must be None or ({V},) bools"
    if problem:
        raise PluginError(f"{_where(tok, owner, method)} returned TokenClasses that do not fit: {problem}")


def _where(tok, owner: type, method: str) -> str:
    """'plugin 'x' (module.Class.method)', or 'tokenizer 'x' (...)' for an unregistered class."""
    plugin = type(tok).__dict__.get("_seqgen_plugin")  # set by the host when it registers the class
    label = f"plugin {plugin!r}" if plugin else f"tokenizer {getattr(tok, 'name', '?')!r}"
    return f"{label} ({owner.__module__}.{owner.__qualname__}.{method})"


def _wrong(tok, owner, method, out, expected) -> PluginError:
    return PluginError(
        f"{_where(tok, owner, method)} returned {type(out).__name__} {_short.repr(out)}, not {expected}"
    )


def _raised(tok, owner, method, e: Exception) -> PluginError:
    if tracing():
        traceback.print_exception(e, file=sys.stderr)
        hint = ""
    else:
        hint = f" (set {TRACE_ENV}=1 for the traceback)"
    text = " ".join(str(e).split()) or "(no message)"
    return PluginError(f"{_where(tok, owner, method)} raised {type(e).__name__}: {text}{hint}")


def _unreadable(path, e: Exception) -> CorpusError:
    if isinstance(e, UnicodeDecodeError):
        return CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {e.start})")
    return CorpusError(f"{path}: cannot read ({e.strerror or e})")
