"""The `seqgen` command line. Library errors (SeqgenError) become one-line click errors here.

Commands import what they need inside their bodies so that `seqgen --help` stays fast.
"""

import functools
import warnings

import click

from seqgen import __version__
from seqgen.errors import SeqgenError


def _echo_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


def seqgen_command(f):
    """Wrap a command: SeqgenError -> one-line click error (exit 1, no traceback); warnings
    are printed as "warning: ..." lines on stderr as they happen."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.showwarning = _echo_warning
            try:
                return f(*args, **kwargs)
            except SeqgenError as e:
                raise click.ClickException(" ".join(str(e).splitlines())) from None

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="seqgen")
def cli():
    """Train recurrent networks on sequences (text, MIDI) and sample new ones."""


@cli.command()
@seqgen_command
def plugins():
    """List loaded plugins, their versions and the tokenizers they provide."""
    from seqgen.plugins import list_plugins

    for info in list_plugins():
        click.echo(f"{info.name} {info.version or '(unknown version)'}: {', '.join(info.tokenizers) or '-'}")


@cli.command()
@click.argument("corpus", type=click.Path(exists=True))
@click.option("--tokenizer", "-t", "tokenizer_name", required=True, help="Tokenizer name (see `seqgen plugins`).")
@click.option(
    "--option", "-O", "options", nargs=2, multiple=True, metavar="KEY VALUE",
    help="Tokenizer option, repeatable (e.g. -O lower true).",
)
@click.option("--top", default=20, show_default=True, help="How many of the most frequent tokens to show.")
@seqgen_command
def tokenize(corpus, tokenizer_name, options, top):
    """Tokenize CORPUS (a file or a directory) and report vocabulary and token statistics."""
    from collections import Counter

    from seqgen.plugins import get_tokenizer
    from seqgen.tokenizer import UNK

    tok = get_tokenizer(tokenizer_name)(**dict(options))
    documents = tok.read(corpus)
    tok.fit(documents)
    tokens = [t for doc in documents for t in doc]
    ids = tok.encode(tokens)
    counts = Counter(tokens)
    click.echo(f"tokenizer: {tok!r}")
    click.echo(f"documents: {len(documents)}")
    click.echo(f"tokens: {len(tokens)}")
    click.echo(f"vocabulary: {len(tok.vocab)} (distinct in corpus: {len(counts)})")
    if UNK in tok.vocab:
        unk_rate = float((ids == tok.vocab.index(UNK)).mean())
        click.echo(f"{UNK} rate: {unk_rate:.2%}")
    else:
        click.echo(f"{UNK} rate: n/a (no {UNK} token)")
    click.echo(f"most frequent tokens (top {top}):")
    for t, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]:
        click.echo(f"  {t!r:>16} {n:>10} {n / len(tokens):8.2%}")
