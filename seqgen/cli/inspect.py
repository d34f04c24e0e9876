"""`seqgen info` and `seqgen export`: look into a checkpoint, or strip it to its weights."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@seqgen_command
def export(model_path, output):
    """Write MODEL's weights and tokenizer to OUTPUT without the training state (smaller; cannot
    be resumed). The training history is kept as a summary."""
    from seqgen.storage import checkpoint

    ckpt = checkpoint.load(model_path)
    t = ckpt.training or ckpt.summary or {}
    summary = {k: t[k] for k in ("step", "epoch", "options", "history", "best_valid", "corpus", "elapsed") if k in t}
    checkpoint.save(output, ckpt.model, ckpt.tokenizer, summary=summary)


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@seqgen_command
def info(model_path):
    """Architecture, size, tokenizer and training history of MODEL."""
    from seqgen.storage import checkpoint

    ckpt = checkpoint.load(model_path)
    c = ckpt.model.config
    tok = ckpt.tokenizer
    click.echo(f"model: {c.cell}, {c.num_layers} layer(s) of {c.hidden_size}, {c.dtype}")
    click.echo(f"parameters: {ckpt.model.num_params:,}")
    opts = ", ".join(f"{k}={v!r}" for k, v in tok.config.items())
    click.echo(f"tokenizer: {tok.name} ({opts}); vocabulary {len(tok.vocab)}")
    t = ckpt.training or ckpt.summary
    if not t:
        click.echo("training: none recorded")
        return
    if ckpt.training is None:
        click.echo("weights only (exported); training summary:")
    o = t["options"]
    click.echo(f"training: step {t['step']}, epoch {t['epoch']}, {o['mode']} mode, B={o['batch_size']}, "
               f"T={o['seq_length']}, {o['optimizer']}")
    if t.get("corpus"):
        click.echo(f"corpus: {t['corpus']}")
    history = t.get("history") or []
    if history:
        last = history[-1]
        click.echo(f"last evaluation: step {last['step']}, train loss {last['train_loss']:.4f}"
                   + (f", valid loss {last['valid_loss']:.4f}" if "valid_loss" in last else ""))
    if t.get("best_valid") is not None:
        click.echo(f"best validation loss: {t['best_valid']:.4f} nats/token")

