"""`seqgen info` and `seqgen export`: look into a checkpoint, or strip it to its weights."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.argument("model", metavar="MODEL")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@seqgen_command
def export(model, output, force):
    """Write MODEL's weights and tokenizer to OUTPUT without the training state (smaller; cannot
    be resumed). MODEL is a checkpoint or a shipped model's name. The training history is kept
    as a summary."""
    from seqgen import api

    api.export(model, output, force=force)


@cli.command()
@click.argument("model", metavar="MODEL")
@seqgen_command
def info(model):
    """Architecture, size, tokenizer and training history of MODEL (a checkpoint or a shipped
    model's name). Losses are mean negative log-likelihoods in nats per token (per label for a
    tagger, per item for a classifier)."""
    from seqgen import api

    i = api.inspect(model)
    c, tok = i.config, i.tokenizer
    direction = ", bidirectional" if c.get("bidirectional") else ""
    click.echo(f"model: {c['cell']}, {c['num_layers']} layer(s) of {c['hidden_size']}{direction}, {c['dtype']}")
    task = c.get("task", "lm")
    if task == "lm":
        click.echo("task: language model (generates with seqgen sample)")
    else:
        labels = list(c.get("labels", ()))
        shown = ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)" if len(labels) > 12 else "")
        pooled = f", {c.get('pooling', 'last')} pooling" if task == "classify" else ""
        click.echo(f"task: {task}{pooled}; labels: {shown} (label with seqgen predict)")
    click.echo(f"parameters: {i.num_params:,}")
    opts = ", ".join(f"{k}={v!r}" for k, v in tok["options"].items())
    click.echo(f"tokenizer: {tok['name']} ({opts}); vocabulary {tok['vocab_size']}; writes {tok['output']}")
    unit = {"lm": "token", "tag": "label", "classify": "item"}[c.get("task", "lm")]
    t = i.training
    if not t:
        click.echo("training: none recorded")
        return
    if i.weights_only:
        click.echo("weights only (exported); training summary:")
    o = t.get("options") or {}
    click.echo(f"training: step {t.get('step')}, epoch {t.get('epoch')}, {o.get('mode')} mode, "
               f"B={o.get('batch_size')}, T={o.get('seq_length')}, {o.get('optimizer')}")
    if t.get("corpus"):
        click.echo(f"corpus: {t['corpus']}")
    history = t.get("history") or []
    if history:
        last = history[-1]
        # Older checkpoints logged the notes' smoothed loss (summed per item with reduction sum):
        # it is not comparable with the validation loss, so it is shown only when per token.
        train = last.get("train_loss") if "interval" in t or o.get("reduction", "mean") == "mean" else None
        parts = [f"step {last['step']}"]
        if train is not None:
            parts.append(f"train loss {train:.4f} nats/{unit} (mean since the previous evaluation)")
        if "valid_loss" in last:
            parts.append(f"valid loss {last['valid_loss']:.4f} nats/{unit}")
        click.echo("last evaluation: " + ", ".join(parts))
    if t.get("best_valid") is not None:
        click.echo(f"best validation loss: {t['best_valid']:.4f} nats/{unit}")
