"""`seqgen plugins` and `seqgen tokenize`: what the plugin host and a tokenizer see."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@seqgen_command
def plugins():
    """List plugins, their versions and the tokenizers they provide; a disabled plugin and
    any other problem of a plugin is shown, indented, under it."""
    import warnings

    from seqgen import api

    with warnings.catch_warnings():  # the problems are listed below, not warned about twice
        warnings.simplefilter("ignore")
        infos = api.plugins()
    for info in infos:
        provides = "disabled" if info.disabled else ", ".join(info.tokenizers) or "-"
        click.echo(f"{info.name} {info.version or '(unknown version)'}: {provides}")
        for problem in ((info.disabled,) if info.disabled else ()) + info.problems:
            click.echo(f"  {problem}")


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
    from seqgen import api

    stats = api.tokenize(corpus, tokenizer_name, dict(options))
    tok, total = stats.tokenizer, stats.tokens
    click.echo(f"tokenizer: {tok!r}")
    click.echo(f"documents: {stats.documents}")
    click.echo(f"tokens: {total}")
    click.echo(f"vocabulary: {len(tok.vocab)} (distinct in corpus: {stats.distinct})")
    click.echo("<UNK> rate: " + ("n/a (no <UNK> token)" if stats.unk_rate is None else f"{stats.unk_rate:.2%}"))
    click.echo(f"most frequent tokens (top {top}):")
    for t, n in sorted(stats.counts.items(), key=lambda item: (-item[1], item[0]))[:top]:
        click.echo(f"  {t!r:>16} {n:>10} {n / total:8.2%}")
