"""The `seqgen` command line. Library errors (SeqgenError) become one-line click errors here.

Commands import what they need inside their bodies so that `seqgen --help` stays fast.
"""

import functools
import os
import warnings

import click

from seqgen import __version__
from seqgen.errors import SeqgenError


def _echo_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


def seqgen_command(f):
    """Wrap a command: SeqgenError -> one-line click error (exit 1, no traceback); Ctrl-C ->
    "interrupted" (exit 130, no traceback); warnings are printed as "warning: ..." lines on
    stderr as they happen."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.showwarning = _echo_warning
            try:
                return f(*args, **kwargs)
            except SeqgenError as e:
                raise click.ClickException(" ".join(str(e).splitlines())) from None
            except KeyboardInterrupt:  # outputs are written atomically, so nothing half-written stays
                click.echo("\ninterrupted", err=True)
                raise SystemExit(130) from None

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="seqgen")
@click.option("--threads", type=click.IntRange(1), envvar="SEQGEN_THREADS",
              help="BLAS threads (default: all cores). Give each of several concurrent runs a share: "
                   "OpenBLAS threads that outnumber the cores spin against each other.")
def cli(threads):
    """Train recurrent networks on sequences (text, MIDI) and sample new ones."""
    if threads:  # read by OpenBLAS when numpy/scipy load, which the commands import lazily
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
