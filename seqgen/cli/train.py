"""`seqgen train` and `seqgen eval`: flags (and a TOML config) -> TrainOptions / EvalOptions ->
seqgen.api -> progress and results on the terminal."""

import os
import stat
import sys
import time

import click

from seqgen.cli.base import cli, given, option_flags, seqgen_command
from seqgen.options import TrainOptions

CLI_ONLY = {"quiet"}  # settings a config file may hold that are about the terminal, not the run
MAX_CONFIG_BYTES = 1 << 20


def _load_config(ctx, param, value):
    """--config FILE -> ctx.meta["config"]: a dict of TrainOptions fields (keys with dashes or
    underscores; the [option] table holds tokenizer options), checked on its own so an error
    names the file."""
    if value is None:
        return None
    from seqgen.errors import ConfigError

    data = _read_toml(value)
    settings, cli_only = {}, {}
    for key, item in data.items():
        name = key.replace("-", "_")
        if name in ("option", "options") and isinstance(item, dict):
            name = "tokenizer_options"
        if name in CLI_ONLY:
            if not isinstance(item, bool):
                raise click.BadParameter(f"{value}: {key}: must be true or false", ctx=ctx, param=param)
            cli_only[name] = item
            continue
        settings[name] = item
    try:
        TrainOptions.parse(settings, source=value)
    except ConfigError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None
    ctx.meta["config"] = settings
    ctx.default_map = {**(ctx.default_map or {}), **cli_only}
    return value


def _read_toml(path):
    """A TOML file as a dict; one-line BadParameter for anything but a small regular TOML file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise click.BadParameter(f"{path}: not a regular file", param_hint="--config")
        if info.st_size > MAX_CONFIG_BYTES:
            raise click.BadParameter(f"{path}: {info.st_size:,} bytes; a config file is at most 1 MB",
                                     param_hint="--config")
        with open(path, "rb") as f:
            return tomllib.loads(f.read(MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})",
                                 param_hint="--config") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise click.BadParameter(f"{path}: not valid TOML ({reason})", param_hint="--config") from None


class Progress:
    """Terminal progress for api.train: a bar with the mean loss so far, rate and validation."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None
        self.valid = ""
        self.rate = ""
        self.tokens, self.since = 0, time.perf_counter()
        self.loss_sum = self.loss_tokens = 0

    def echo(self, message):
        if not self.quiet:
            click.echo(message, err=True)

    def on_start(self, trainer, summary):
        self.echo(summary)
        self.bar = click.progressbar(length=trainer.total_steps - trainer.step, label="training", file=sys.stderr,
                                     item_show_func=lambda s: s, hidden=self.quiet, show_pos=True)
        self.bar.__enter__()

    def on_step(self, trainer, loss, tokens):
        self.tokens += tokens
        seconds = time.perf_counter() - self.since
        if seconds > 1.0:
            self.rate = f"{self.tokens / seconds:,.0f} tok/s"
            self.tokens, self.since = 0, time.perf_counter()
        self.bar.update(1, f"train loss {trainer.train_loss:.4f} nats/token (mean since last eval){self.valid} "
                           f"{self.rate}")

    def on_eval(self, trainer, record):
        self.valid = f", valid {record['valid_loss']:.4f}" if "valid_loss" in record else ""
        if "valid_loss_raw" in record:
            self.valid += f" (averaged; {record['valid_loss_raw']:.4f} not)"
        if "grad_norm" in record:
            self.valid += f", grad norm {record['grad_norm']:.3g} (max {record['grad_norm_max']:.3g})"

    def on_sample(self, trainer, text):
        click.echo(f"\n--- sample at step {trainer.step} ---\n{text}\n---")

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@cli.command()
@click.argument("corpus", type=click.Path(exists=True), required=False)
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="TOML file of settings (see docs/options.md); the command line wins.")
@click.option("--option", "-O", "tokenizer_option", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Tokenizer option, repeatable (e.g. -O lower true).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False),
              help="Continue from a training checkpoint (writes back to it unless -o is given).")
@click.option("--quiet", "-q", is_flag=True, default=None, help="No progress bar or messages.")
@click.option("--bidirectional/--unidirectional", default=None,
              help="tag/classify: add a backward recurrence to every layer [default: unidirectional].")
@option_flags(TrainOptions, skip={"corpus", "tokenizer_options", "bidirectional"},
              short={"tokenizer": ("-t",), "output": ("-o",)}, choices={"cell": ["rnn", "lstm", "gru"]})
@click.pass_context
@seqgen_command
def train(ctx, corpus, tokenizer_option, resume, quiet, **flags):
    """Train a model on CORPUS (a file or a directory) and save checkpoints. Every setting may
    come from --config FILE instead; see docs/options.md."""
    from seqgen import api

    settings = dict(ctx.meta.get("config", {}))
    settings.update(given(flags))
    if corpus is not None:
        settings["corpus"] = corpus
    if tokenizer_option:
        settings["tokenizer_options"] = {**settings.get("tokenizer_options", {}), **dict(tokenizer_option)}
    quiet = bool(quiet if quiet is not None else ctx.default_map and ctx.default_map.get("quiet"))
    progress = Progress(quiet)
    try:
        if resume:
            result = api.resume(resume, settings, progress)
        else:
            result = api.train(TrainOptions.parse(settings), progress)
    finally:
        progress.close()
    output = result.output
    if result.reason == "interrupted":
        click.echo(f"interrupted at step {result.step}; checkpoint saved to {output}. "
                   f"Resume with: seqgen train --resume {output}", err=True)
        raise SystemExit(130)
    if result.reason == "time limit":
        progress.echo(f"time limit reached at step {result.step}")
    elif result.reason == "early stopping":
        progress.echo(f"stopped early at step {result.step}: no improvement in "
                      f"{result.trainer.options.patience} evaluations")
    unit = {"lm": "token", "tag": "label", "classify": "item"}[result.trainer.model.config.task]
    best = (f"; best validation loss {result.best_valid:.4f} nats/{unit} in {result.best_output}"
            if result.best_output else "")
    progress.echo(f"saved {output} (step {result.step}){best}")


@cli.command(name="eval")
@click.argument("model", metavar="MODEL")
@click.argument("corpus", type=click.Path(exists=True))
@click.option("--batch-size", type=int, help="Streams or items scored at once (memory, not result) [default: 32].")
@click.option("--seq-length", type=int, help="Steps per window while scoring [default: 64].")
@seqgen_command
def eval_(model, corpus, batch_size, seq_length):
    """Mean loss of MODEL (a checkpoint or a shipped model's name) on CORPUS: nats per token,
    perplexity and bits per token. For a tagger or classifier, on a labelled CORPUS: loss,
    accuracy, per-label precision/recall/F1 and, for BIO tags, entity-level F1."""
    from seqgen import api
    from seqgen.options import EvalOptions

    options = EvalOptions.parse(given({"model": model, "corpus": corpus, "batch_size": batch_size,
                                       "seq_length": seq_length}))
    result = api.evaluate(options)
    if isinstance(result, api.TaskEvaluation):
        _echo_task_evaluation(result)
        return
    click.echo(f"tokens: {result.tokens}")
    click.echo(f"loss: {result.loss:.4f} nats/token")
    click.echo(f"perplexity: {result.perplexity:.3f}")
    click.echo(f"bits per token: {result.bits_per_token:.4f}")


def _echo_task_evaluation(result):
    unit = "label" if result.task == "tag" else "item"
    click.echo(f"items: {result.items}")
    click.echo(f"labels scored: {result.targets}")
    click.echo(f"loss: {result.loss:.4f} nats/{unit}")
    click.echo(f"accuracy: {result.accuracy:.4f}")
    if result.entity is not None:
        e = result.entity
        click.echo(f"entity-level (BIO spans): precision {e.precision:.4f}, recall {e.recall:.4f}, F1 {e.f1:.4f} "
                   f"({e.support} entities)")
    width = max(len("label"), *(len(label) for label in result.labels))
    click.echo(f"{'label':<{width}}  precision  recall      F1  support")
    for label, s in result.labels.items():
        click.echo(f"{label:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}  {s.support:7d}")
