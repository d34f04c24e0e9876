"""The `seqgen` command line: flags -> option objects -> seqgen.api -> output, one module per
group of commands. Library errors (SeqgenError) become one-line click errors in ``base``."""

from seqgen.cli import inspect, plot, predict, sample, serve, sweep, tokens, train  # noqa: F401  (each registers)
from seqgen.cli.base import cli

__all__ = ["cli"]
