"""The `seqgen` command line: flags -> option objects -> seqgen.api -> output, one module per
group of commands. Library errors (SeqgenError) become one-line click errors in ``base``.

Each command's module is imported when the command is used (``base.LazyGroup``): a new command
goes into ``COMMANDS`` as well as into its module."""

from seqgen.cli.base import cli

COMMANDS = {
    "sample": "sample", "models": "sample",
    "train": "train", "eval": "train",
    "info": "inspect", "export": "inspect",
    "tokenize": "tokens", "plugins": "tokens",
    "plot": "plot", "predict": "predict", "serve": "serve", "sweep": "sweep",
}
cli.modules = {name: f"seqgen.cli.{module}" for name, module in COMMANDS.items()}

__all__ = ["cli"]
