"""`seqgen predict`: label a file with a tag or classify model (flags -> PredictOptions ->
seqgen.api.predict -> formatted labels on standard output or in a file)."""

import click

from seqgen.cli.base import cli, given, seqgen_command


@cli.command()
@click.argument("model", metavar="MODEL")
@click.argument("file", type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here (atomically) instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "conll", "tsv"]),
              help="json: one object per item and line; conll: token [gold] label per line (tag); "
                   "tsv: tokens<TAB>labels (tag) or label<TAB>text (classify) [default: tsv].")
@click.option("--batch-size", type=int, help="Items labelled at once (memory, not result) [default: 32].")
@click.option("--force", is_flag=True, default=None, help="Overwrite OUTPUT if it exists.")
@seqgen_command
def predict(model, file, output, fmt, batch_size, force):
    """Label the items of FILE with MODEL (a tag or classify checkpoint). FILE is in the format
    the model was trained on (CoNLL columns, or label<TAB>text lines); its labels may be left
    out, and when present they are printed beside the predictions."""
    from seqgen import api
    from seqgen.options import PredictOptions

    options = PredictOptions.parse(given({"model": model, "file": file, "output": output, "format": fmt,
                                          "batch_size": batch_size, "force": force}))
    predictions = api.predict(options)
    text = api.write_predictions(options, predictions)
    if text is not None:
        click.echo(text, nl=False)
