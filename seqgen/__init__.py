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

__version__ = "0.1.0"

_LAZY = {
    "Model": "seqgen.model",
    "Tokenizer": "seqgen.tokenizer",
    "hookimpl": "seqgen.hookspecs",
    "sample": "seqgen.generate",
    "load_model": "seqgen.generate",
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
    "PluginError",
    "SeqgenError",
    "ShapeError",
    "Tokenizer",
    "TokenizerError",
    "TrainingError",
    "__version__",
    "hookimpl",
    "load_model",
    "sample",
]
