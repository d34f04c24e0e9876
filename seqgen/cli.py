"""The `seqgen` command line. Library errors (SeqgenError) become one-line click errors here."""

import click

from seqgen import __version__


@click.group()
@click.version_option(__version__, prog_name="seqgen")
def cli():
    """Train recurrent networks on sequences (text, MIDI) and sample new ones."""
