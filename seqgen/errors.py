"""seqgen's exceptions. The library raises these; only the CLI turns them into click errors."""


class SeqgenError(Exception):
    """Base class of every error seqgen raises on purpose.

    ``fields``: the option names (``seqgen.options``) the message mentions, such as
    ``batch_size``; a front end may put its own words for them (``--batch-size``, a JSON field)."""

    def __init__(self, message="", *, fields=()):
        super().__init__(message)
        self.fields = tuple(fields)


class ShapeError(SeqgenError, ValueError):
    """An array has the wrong shape, dtype or contents for the call it was passed to."""


class ConfigError(SeqgenError, ValueError):
    """A model, training or sampling setting is invalid."""


class CorpusError(SeqgenError):
    """A corpus cannot be read or tokenized (empty, binary, truncated, no usable files)."""


class TokenizerError(SeqgenError):
    """A tokenizer cannot encode, decode or write what it was given (e.g. unknown tokens)."""


class PluginError(SeqgenError):
    """A plugin is missing, broken, or clashes with another plugin."""


class CheckpointError(SeqgenError):
    """A checkpoint is missing, corrupt, or was written by an incompatible version or plugin."""


class TrainingError(SeqgenError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""
