"""seqgen: train recurrent networks on sequences and generate new ones.

Heavy modules (numba kernels) are imported lazily so that commands which do not need them
start fast.
"""

from importlib import import_module

from seqgen.errors import (
    CheckpointError,
    ConfigError,
    CorpusError,
    PluginError,
    SeqgenError,
    ShapeError,
    TokenizerError,
    TrainingError,
)

_LAZY = {
    "Model": "seqgen.engine.model",
    "Tokenizer": "seqgen.plugins.tokenizer",
    "Option": "seqgen.plugins.tokenizer",
    "UNK": "seqgen.plugins.tokenizer",
    "read_text": "seqgen.plugins.tokenizer",
    "iter_text": "seqgen.plugins.tokenizer",
    "hookimpl": "seqgen.plugins.hookspecs",
    "sample": "seqgen.generation.samples",
    "load_model": "seqgen.generation.samples",
}


def _version():
    """The version pyproject.toml gives the installed distribution: one source of truth, read
    on first use (importlib.metadata costs ~0.1 s at start-up)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqgen")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seqgen' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorpusError",
    "Model",
    "Option",
    "PluginError",
    "SeqgenError",
    "ShapeError",
    "Tokenizer",
    "TokenizerError",
    "TrainingError",
    "UNK",
    "__version__",
    "hookimpl",
    "iter_text",
    "load_model",
    "read_text",
    "sample",
]
