"""`seqgen plot`: loss curves of training logs, piano rolls of MIDI files."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The picture: .png, .svg or .pdf.")
@click.option("--x", "x", type=click.Choice(["both", "step", "time"]), default="both", show_default=True,
              help="Loss curves against steps, training time, or both side by side.")
@click.option("--dpi", type=click.IntRange(30, 600), default=100, show_default=True, help="Pixels per inch.")
@click.option("--title", help="A title over the picture.")
@click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
@seqgen_command
def plot(inputs, output, x, dpi, title, force):
    """Draw FILEs: training logs (`seqgen train --log`, .jsonl) as loss curves, one line per run;
    MIDI files (.mid) as piano rolls side by side."""
    from pathlib import Path

    from seqgen import plots

    plots.input_kind(inputs)
    plots.check_output(output)
    if Path(output).exists() and not force:
        raise click.ClickException(f"{output}: already exists; pass --force to overwrite it")
    plots.plot(inputs, output, x=x, dpi=dpi, title=title)
    click.echo(f"wrote {output}", err=True)
