"""`seqgen train` and `seqgen eval`."""

import click

from seqgen.cli.base import cli, seqgen_command


def _load_config_file(ctx, param, value):
    """--config FILE: a TOML table of option defaults (keys as the long option names, with
    dashes or underscores); options given on the command line win."""
    if value is None:
        return None
    import tomllib

    try:
        with open(value, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise click.BadParameter(f"{value}: {e}", ctx=ctx, param=param) from None
    names = {p.name for p in ctx.command.params}
    defaults = {}
    for key, item in data.items():
        name = key.replace("-", "_")
        if name in ("option", "options") and isinstance(item, dict):  # [option] table: tokenizer options
            name, item = "options", [(k, str(v)) for k, v in item.items()]
        if name not in names:
            raise click.BadParameter(f"{value}: unknown setting {key!r}", ctx=ctx, param=param)
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _given(ctx, name):
    """Was option `name` set by the user (command line or config file), not by its default?"""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)


@cli.command()
@click.argument("corpus", type=click.Path(exists=True), required=False)
@click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config_file, help="TOML file of option defaults; the command line wins.")
@click.option("--tokenizer", "-t", "tokenizer_name", default="chars", show_default=True, help="Tokenizer plugin.")
@click.option("--option", "-O", "options", nargs=2, multiple=True, metavar="KEY VALUE", help="Tokenizer option.")
@click.option("--cell", type=click.Choice(["rnn", "lstm", "gru"]), default="lstm", show_default=True)
@click.option("--hidden-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--layers", type=click.IntRange(1), default=1, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout between stacked layers.")
@click.option("--init", type=click.Choice(["orthogonal", "small"]), default="orthogonal", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--mode", type=click.Choice(["stream", "items"]), default="stream", show_default=True,
              help="stream: B parallel streams, state carried (truncated BPTT); items: one item per sequence.")
@click.option("--seq-length", type=click.IntRange(1), default=64, show_default=True, help="Steps per window (T).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Streams or items (B).")
@click.option("--steps", type=click.IntRange(1), help="Total optimiser steps (default: --epochs, else 1 epoch).")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), help="Passes over the training data.")
@click.option("--optimizer", type=click.Choice(["sgd", "adagrad", "rmsprop", "adam"]), default="adam",
              show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Learning rate [sgd/adagrad 0.01, else 0.002].")
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--decay", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Learning-rate decay factor per --decay-every steps.")
@click.option("--decay-every", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--clip-value", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Clip each gradient element to [-c, c]; 0 turns it off.")
@click.option("--clip-norm", type=click.FloatRange(0, min_open=True), help="Clip the global gradient norm.")
@click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="Loss per token (mean) or summed over each sequence (sum, as in the notes).")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--valid", "valid_path", type=click.Path(exists=True), help="Separate validation corpus.")
@click.option("--eval-every", type=click.IntRange(1), default=200, show_default=True)
@click.option("--patience", type=click.IntRange(1), help="Stop after this many evaluations without improvement.")
@click.option("--max-minutes", type=click.FloatRange(0, min_open=True), help="Stop (and save) after this much time.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="model.npz", show_default=True,
              help="Checkpoint path (with --resume: the resumed file); the best by validation goes to NAME.best.npz.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), help="Continue from a checkpoint.")
@click.option("--sample-every", type=click.IntRange(1), help="Print a sample every K steps.")
@click.option("--sample-length", type=click.IntRange(1), default=200, show_default=True)
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Append each evaluation as a JSON line.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages.")
@click.pass_context
@seqgen_command
def train(ctx, corpus, tokenizer_name, options, cell, hidden_size, layers, dropout, init, dtype, mode, seq_length,
          batch_size, steps, epochs, optimizer, lr, momentum, decay, decay_every, clip_value, clip_norm, reduction,
          valid_fraction, valid_path, eval_every, patience, max_minutes, seed, output, resume, sample_every,
          sample_length, log_path, quiet):
    """Train a model on CORPUS (a file or a directory) and save checkpoints."""
    import itertools
    import json
    import sys
    import time

    from seqgen.training.data import encode_corpus, evaluation_windows, make_windows, split_validation
    from seqgen.training.trainer import Trainer, TrainOptions, best_path

    run = dict(mode=mode, batch_size=batch_size, seq_length=seq_length, steps=steps, epochs=epochs,
               optimizer=optimizer, lr=lr, momentum=momentum, decay=decay, decay_every=decay_every,
               clip_value=clip_value, clip_norm=clip_norm, reduction=reduction, dropout=dropout,
               eval_every=eval_every, patience=patience, seed=seed)
    if resume:
        from seqgen.storage import checkpoint

        ckpt = checkpoint.load(resume)
        if ckpt.training is None:
            raise click.ClickException(f"{resume}: a weights-only checkpoint cannot be resumed")
        model, tok, meta = ckpt.model, ckpt.tokenizer, ckpt.training
        stored = dict(meta["options"])
        for name in ("steps", "epochs", "eval_every", "patience"):  # may be extended on resume
            if _given(ctx, name):
                stored[name] = run[name]
        options_ = TrainOptions.from_dict(stored)
        corpus = corpus or meta.get("corpus")
        if not _given(ctx, "output"):
            output = resume
        valid_path, valid_fraction = meta.get("valid_path"), meta.get("valid_fraction", 0.0)
        if corpus is None:
            raise click.UsageError("give the CORPUS to resume on")
    else:
        if corpus is None:
            raise click.UsageError("missing argument CORPUS")
        from seqgen.engine.model import Model
        from seqgen.plugins.host import get_tokenizer

        options_ = TrainOptions(**run)
        tok = get_tokenizer(tokenizer_name)(**dict(options))
        tok.fit(itertools.chain(tok.iter_documents(corpus), tok.iter_documents(valid_path) if valid_path else ()))
        model = Model.create(cell, len(tok.vocab), hidden_size, layers, seed=seed, dtype=dtype, init=init)
    sep_id = tok.separator_id
    ids = encode_corpus(tok, corpus)
    if valid_path:
        train_data, valid_data = split_validation(ids, sep_id, options_.mode, 0.0)[0], encode_corpus(tok, valid_path)
    else:
        train_data, valid_data = split_validation(ids, sep_id, options_.mode, valid_fraction, options_.seed,
                                                  what=str(corpus))
    o = options_
    train_windows = make_windows(o.mode, train_data, sep_id, o.batch_size, o.seq_length, o.seed, what=str(corpus))
    valid_windows = None
    if valid_data is not None:
        valid_windows = evaluation_windows(o.mode, valid_data, sep_id, o.batch_size, o.seq_length, "validation data")
    trainer = Trainer(model, tok, train_windows, valid_windows, o, output,
                      extra_meta={"corpus": str(corpus), "valid_path": valid_path, "valid_fraction": valid_fraction})
    if resume:
        trainer.restore(meta, ckpt.arrays)

    def echo(message):
        if not quiet:
            click.echo(message, err=True)

    echo(f"{model!r}: {model.num_params:,} parameters; {len(tok.vocab)} tokens in the vocabulary; "
         f"{train_windows.num_tokens:,} training tokens, {trainer.total_steps:,} steps")
    log_file = open(log_path, "a", encoding="utf-8") if log_path else None

    def on_eval(t, record):
        if log_file:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
        if not quiet and "valid_loss" in record:
            status["valid"] = f"valid {record['valid_loss']:.4f}"

    def on_sample(t):
        from seqgen.generation.samples import sample as draw
        from seqgen.storage.checkpoint import Checkpoint

        [s] = draw(Checkpoint(t.model, tok, None, {}), length=sample_length, stop="", seed=t.step)
        click.echo(f"\n--- sample at step {t.step} ---\n{s.text}\n---")

    status = {"valid": "", "rate": "", "tokens": 0, "since": time.perf_counter()}
    with click.progressbar(length=trainer.total_steps - trainer.step, label="training", file=sys.stderr,
                           item_show_func=lambda s: s, hidden=quiet, show_pos=True) as bar:
        def on_step(t, loss, tokens):
            status["tokens"] += tokens
            seconds = time.perf_counter() - status["since"]
            if seconds > 1.0:
                status["rate"] = f"{status['tokens'] / seconds:,.0f} tok/s"
                status["tokens"], status["since"] = 0, time.perf_counter()
            bar.update(1, f"loss {t.smoothed:.4f} {status['valid']} {status['rate']}")

        try:
            reason = trainer.run(on_step=on_step, on_eval=on_eval, on_sample=on_sample, sample_every=sample_every,
                                 max_seconds=max_minutes * 60 if max_minutes else None)
        finally:
            if log_file:
                log_file.close()
    if reason == "interrupted":
        echo(f"interrupted at step {trainer.step}; checkpoint saved to {output}. "
             f"Resume with: seqgen train --resume {output}")
    elif reason == "time limit":
        echo(f"time limit reached at step {trainer.step}")
    elif reason == "early stopping":
        echo(f"stopped early at step {trainer.step}: no improvement in {o.patience} evaluations")
    best = f"; best validation loss {trainer.best_valid:.4f} in {best_path(output)}" if valid_windows else ""
    echo(f"saved {output} (step {trainer.step}){best}")


@cli.command(name="eval")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("corpus", type=click.Path(exists=True))
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--seq-length", type=click.IntRange(1), default=64, show_default=True)
@seqgen_command
def eval_(model_path, corpus, batch_size, seq_length):
    """Mean loss of MODEL on CORPUS: nats per token, perplexity and bits per token."""
    import math

    from seqgen.storage import checkpoint
    from seqgen.training.data import encode_corpus, evaluation_windows
    from seqgen.training.trainer import mean_loss

    ckpt = checkpoint.load(model_path)
    tok = ckpt.tokenizer
    ids = encode_corpus(tok, corpus)
    mode = (ckpt.training or ckpt.summary or {}).get("options", {}).get("mode", "stream")
    windows = evaluation_windows(mode, ids, tok.separator_id, batch_size, seq_length, str(corpus))
    loss = mean_loss(ckpt.model, windows.iter_windows())
    click.echo(f"tokens: {windows.num_tokens}")
    click.echo(f"loss: {loss:.4f} nats/token")
    click.echo(f"perplexity: {math.exp(loss):.3f}")
    click.echo(f"bits per token: {loss / math.log(2):.4f}")

