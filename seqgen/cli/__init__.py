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


@cli.command()
@seqgen_command
def plugins():
    """List loaded plugins, their versions and the tokenizers they provide."""
    from seqgen.plugins.host import list_plugins

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

    from seqgen.plugins.host import get_tokenizer
    from seqgen.plugins.tokenizer import UNK

    tok = get_tokenizer(tokenizer_name)(**dict(options))
    counts, documents = Counter(), 0
    for document in tok.iter_documents(corpus):  # one pass, one document in memory at a time
        counts.update(document)
        documents += 1
    tok.fit_counts(counts)
    total = counts.total()
    click.echo(f"tokenizer: {tok!r}")
    click.echo(f"documents: {documents}")
    click.echo(f"tokens: {total}")
    click.echo(f"vocabulary: {len(tok.vocab)} (distinct in corpus: {len(counts)})")
    if UNK in tok.vocab:  # tokens outside the fitted vocabulary encode as <UNK>
        vocab = set(tok.vocab)
        unk = sum(n for t, n in counts.items() if t not in vocab or t == UNK)
        click.echo(f"{UNK} rate: {unk / total:.2%}")
    else:
        click.echo(f"{UNK} rate: n/a (no {UNK} token)")
    click.echo(f"most frequent tokens (top {top}):")
    for t, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]:
        click.echo(f"  {t!r:>16} {n:>10} {n / total:8.2%}")


# ---------------------------------------------------------------------------------- training
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


# ---------------------------------------------------------------------------------- sampling
@cli.command()
@click.option("--model", "-m", "model_name", metavar="NAME|PATH",
              help="A checkpoint file or a shipped model (see `seqgen models`); default: the text model.")
@click.option("-n", "count", type=click.IntRange(1), default=1, show_default=True, help="Number of samples.")
@click.option("--length", type=int, default=200, show_default=True, help="Maximum tokens per sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="> 0; lower is more conservative.")
@click.option("--top-k", type=click.IntRange(0), default=0, show_default=True,
              help="Sample from the k likeliest (0: off).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling, in (0, 1].")
@click.option("--greedy", is_flag=True, help="Always take the likeliest token.")
@click.option("--beam", type=click.IntRange(1), help="Beam search of this width: the most likely continuations.")
@click.option("--prime", help="Text to start from.")
@click.option("--prime-midi", type=click.Path(exists=True, dir_okay=False), help="A .mid file to start from.")
@click.option("--unknown", type=click.Choice(["error", "skip", "unk"]), default="error", show_default=True,
              help="What to do with primer tokens the model does not know.")
@click.option("--stop", help="Stop once the output contains this text (default: the item separator).")
@click.option("--no-stop", is_flag=True, help="Never stop before --length.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", type=click.Path(), default="-", show_default=True,
              help="Text: a file, or - for stdout. MIDI models: a directory for one .mid per sample.")
@click.option("--no-prime-in-output", is_flag=True, help="Leave the primer out of the output.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tempo", type=click.FloatRange(1, 1000), default=120.0, show_default=True,
              help="MIDI: beats per minute.")
@click.option("--program", type=click.IntRange(0, 127), default=0, show_default=True, help="MIDI: instrument.")
@click.option("--velocity", type=click.IntRange(1, 127), default=80, show_default=True, help="MIDI: note velocity.")
@seqgen_command
def sample(model_name, count, length, temperature, top_k, top_p, greedy, beam, prime, prime_midi, unknown, stop,
           no_stop, seed, output, no_prime_in_output, fmt, tempo, program, velocity):
    """Generate samples from a trained model, each token fed back in as the next input."""
    import json
    from pathlib import Path

    from seqgen.generation.sampler import check_sampling_options
    from seqgen.generation.samples import load_model, stream_text
    from seqgen.generation.samples import sample as draw
    from seqgen.storage.atomic import write_atomically

    check_sampling_options(count, length, temperature, top_k, top_p)
    ckpt = load_model(model_name)
    tok = ckpt.tokenizer
    stop = "" if no_stop else stop
    options = dict(length=length, prime=prime, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                   stop=stop, seed=seed, unknown=unknown, include_prime=not no_prime_in_output)
    midi = tok.output == "midi"
    if midi and output != "-" and Path(output).exists() and not Path(output).is_dir():
        raise click.BadParameter(f"{output}: MIDI samples go to a directory, and this is a file", param_hint="-o")
    if not midi and output != "-" and Path(output).is_dir():
        raise click.BadParameter(f"{output}: is a directory; give a file name", param_hint="-o")

    if fmt == "text" and output == "-" and count == 1 and not beam and not midi and prime_midi is None:
        for piece in stream_text(ckpt, **options):  # print as it is generated
            click.echo(piece, nl=False)
        click.echo()
        return

    samples = draw(ckpt, n=count, prime_midi=prime_midi, beam=beam, **options)
    paths = []
    if midi and output != "-":
        directory = Path(output)
        directory.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(count)))
        for i, s in enumerate(samples, 1):
            path = directory / f"sample_{i:0{width}d}.mid"
            write_atomically(path, lambda tmp, s=s: tok.write(s.tokens, tmp, tempo=tempo, program=program,
                                                                velocity=velocity))
            paths.append(str(path))
    if fmt == "json":
        records = [{"text": s.text, "logp": s.logp, "tokens": len(s.tokens)} for s in samples]
        for record, path in zip(records, paths):
            record["path"] = path
        text = json.dumps({"model": str(model_name or "default"), "seed": seed, "samples": records}, indent=2) + "\n"
    elif paths:
        text = "".join(f"{p}\n" for p in paths)
    else:
        sep = "\n\n" if any("\n" in s.text for s in samples) else "\n"
        text = sep.join(s.text for s in samples) + "\n"
    if output == "-" or (midi and fmt == "text"):
        click.echo(text, nl=False)
    else:
        target = Path(output) / "samples.json" if midi else Path(output)
        write_atomically(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@cli.command()
@seqgen_command
def models():
    """List the models shipped with seqgen."""
    from seqgen.storage import shipped

    entries = shipped.catalog()
    if not entries:
        click.echo("no models are shipped with this build")
    for name, entry in entries.items():
        default = " (default)" if name == shipped.DEFAULT_TEXT_MODEL else ""
        loss = f"; validation loss {entry['valid_loss']:.3f} nats/token" if entry.get("valid_loss") else ""
        click.echo(f"{name}{default}: {entry['description']}{loss}")
