"""seqgen: train recurrent networks on sequences and generate new ones.

Heavy modules (numba kernels) are imported lazily so that commands which do not need them
start fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

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

try:  # one source of truth: the version pyproject.toml gives the installed distribution
    __version__ = version("seqgen")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

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


def __getattr__(name):
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
