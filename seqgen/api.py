"""seqgen's library API: the one entry point under the CLI, the service, sweeps and scripts.

Every function takes validated option objects (``seqgen.options``) or plain values, raises
``seqgen.errors.SeqgenError`` subclasses (never prints, never exits) and returns results as
plain objects. Front ends turn flags, config files or JSON into options, call these, and
turn results and errors into their own output.

    from seqgen import api
    from seqgen.options import TrainOptions
    result = api.train(TrainOptions(corpus="corpora/dinos.txt", mode="items", steps=500))
    print(result.reason, result.trainer.best_valid)
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import NamedTuple

from seqgen.errors import CheckpointError, ConfigError, SeqgenError
from seqgen.options import EvalOptions, TrainOptions
from seqgen.storage import shipped


# ---------------------------------------------------------------------------------- models
def resolve_model(model=None) -> Path:
    """A checkpoint path, or the file of a shipped model's name (None: the default text
    model). CheckpointError if it is neither."""
    if model is None:
        model = shipped.DEFAULT_TEXT_MODEL
    path = Path(model)
    if path.exists():
        return path
    if str(model) in shipped.names():
        return shipped.path(str(model))
    known = ", ".join(shipped.names()) or "none"
    raise CheckpointError(f"{model}: no such checkpoint file or shipped model (shipped: {known})")


def load(model=None):
    """A ``Checkpoint`` from a path, a shipped model's name, a Checkpoint, or None (default)."""
    from seqgen.storage import checkpoint

    if isinstance(model, checkpoint.Checkpoint):
        return model
    return checkpoint.load(resolve_model(model))


class ModelInfo(NamedTuple):
    """What ``seqgen info`` shows: architecture, size, tokenizer and training record."""

    path: Path
    config: dict  # cell, vocab_size, hidden_size, num_layers, dtype
    num_params: int
    tokenizer: dict  # name, options, vocab size, output kind
    training: dict | None  # the training record (a summary for weights-only files)
    weights_only: bool


def inspect(model) -> ModelInfo:
    """Architecture, size, tokenizer and training record of a checkpoint or shipped model."""
    path = resolve_model(model)
    ckpt = load(path)
    tok = ckpt.tokenizer
    tokenizer = {"name": tok.name, "options": dict(tok.config), "vocab_size": len(tok.vocab), "output": tok.output}
    training = ckpt.training or ckpt.summary
    return ModelInfo(path, ckpt.model.config_dict(), ckpt.model.num_params, tokenizer, training,
                     ckpt.training is None)


def export(model, output, force=False) -> Path:
    """Write a checkpoint's weights and tokenizer to ``output`` without the training state
    (smaller; cannot be resumed); the training history is kept as a summary."""
    from seqgen.storage import checkpoint

    output = Path(output)
    _check_new_output(output, force, "output")
    ckpt = load(model)
    t = ckpt.training or ckpt.summary or {}
    summary = {k: t[k] for k in ("step", "epoch", "options", "history", "best_valid", "corpus", "elapsed") if k in t}
    checkpoint.save(output, ckpt.model, ckpt.tokenizer, summary=summary)
    return output


# ---------------------------------------------------------------------------------- plugins and corpora
def plugins():
    """The plugins seqgen found (``seqgen.plugins.host.PluginInfo``), disabled ones included
    with the reason, sorted by name."""
    from seqgen.plugins.host import list_plugins

    return list_plugins()


class CorpusStats(NamedTuple):
    """What a tokenizer makes of a corpus (``seqgen tokenize``)."""

    tokenizer: object  # the fitted Tokenizer
    documents: int
    tokens: int
    distinct: int  # distinct tokens in the corpus
    unk_rate: float | None  # share of tokens outside the fitted vocabulary; None without <UNK>
    counts: object  # collections.Counter of token -> occurrences


def tokenize(corpus, tokenizer="chars", options=None) -> CorpusStats:
    """Tokenize a corpus (file or directory) in one streaming pass and fit the vocabulary."""
    from collections import Counter

    from seqgen.plugins.host import get_tokenizer
    from seqgen.plugins.tokenizer import UNK

    tok = get_tokenizer(tokenizer)(**dict(options or {}))
    counts, documents = Counter(), 0
    for document in tok.iter_documents(corpus):  # one document in memory at a time
        counts.update(document)
        documents += 1
    tok.fit_counts(counts)
    total = counts.total()
    unk_rate = None
    if UNK in tok.vocab:  # tokens outside the fitted vocabulary encode as <UNK>
        vocab = set(tok.vocab)
        unk_rate = sum(n for t, n in counts.items() if t not in vocab or t == UNK) / max(total, 1)
    return CorpusStats(tok, documents, total, len(counts), unk_rate, counts)


# ---------------------------------------------------------------------------------- evaluation
class Evaluation(NamedTuple):
    tokens: int  # target tokens scored
    loss: float  # mean NLL, nats/token
    perplexity: float
    bits_per_token: float


def evaluate(options: EvalOptions) -> Evaluation:
    """Mean loss of a model on a corpus, in the windows of the mode it was trained in."""
    from seqgen.training.data import encode_corpus, evaluation_windows
    from seqgen.training.trainer import mean_loss

    ckpt = load(options.model)
    tok = ckpt.tokenizer
    ids = encode_corpus(tok, options.corpus)
    mode = ((ckpt.training or ckpt.summary or {}).get("options") or {}).get("mode", "stream")
    windows = evaluation_windows(mode, ids, tok.separator_id, options.batch_size, options.seq_length,
                                 str(options.corpus))
    loss = mean_loss(ckpt.model, windows.iter_windows())
    return Evaluation(windows.num_tokens, loss, math.exp(loss), loss / math.log(2))


# ---------------------------------------------------------------------------------- training
class TrainEvents:
    """Hooks a front end overrides to show progress; every method is optional."""

    def on_start(self, trainer, summary: str):
        """Once, before the first step; ``summary`` describes model and data in one line."""

    def on_step(self, trainer, loss: float, tokens: int):
        """After each optimiser step: that step's loss (nats/token) and target tokens."""

    def on_eval(self, trainer, record: dict):
        """After each evaluation (and checkpoint): the record written to the log."""

    def on_sample(self, trainer, text: str):
        """Every ``sample_every`` steps: a sample from the model being trained."""


class TrainResult(NamedTuple):
    reason: str  # "done", "early stopping", "time limit" or "interrupted"
    step: int
    output: Path
    best_valid: float | None  # nats/token; None without validation data
    best_output: Path | None
    trainer: object  # the Trainer, for callers that want its state


def train(options: TrainOptions, events: TrainEvents | None = None) -> TrainResult:
    """Fit a tokenizer on the corpus, build a model and train it as ``options`` say."""
    from seqgen.engine.model import Model
    from seqgen.plugins.host import get_tokenizer

    if options.corpus is None:
        raise ConfigError("corpus: give the corpus to train on", fields=("corpus",))
    _check_outputs(options)
    tok = get_tokenizer(options.tokenizer)(**options.tokenizer_options)
    documents = itertools.chain(tok.iter_documents(options.corpus),
                                tok.iter_documents(options.valid) if options.valid else ())
    tok.fit(documents)
    m = options.model_options
    model = Model.create(m.cell, len(tok.vocab), m.hidden_size, m.layers, seed=options.seed, dtype=m.dtype,
                         init=m.init)
    return _run(model, tok, options, None, events)


def resume(checkpoint_path, changes: dict | None = None, events: TrainEvents | None = None) -> TrainResult:
    """Continue a training checkpoint exactly where it stopped. ``changes``: options to change
    (only those in ``TrainOptions.RESUMABLE``: how long to run and what to report; anything
    that would change the next update is refused rather than silently dropped)."""
    from seqgen.storage import checkpoint

    ckpt = checkpoint.load(checkpoint_path)
    if ckpt.training is None:
        raise CheckpointError(f"{checkpoint_path}: a weights-only checkpoint cannot be resumed")
    meta = ckpt.training
    stored = {k: v for k, v in (meta.get("options") or {}).items() if k in TrainOptions.model_fields}
    c = ckpt.model.config
    stored.update(cell=c.cell, hidden_size=c.hidden_size, layers=c.num_layers, dtype=c.dtype,
                  tokenizer=ckpt.tokenizer.name, tokenizer_options=dict(ckpt.tokenizer.config))
    stored.setdefault("corpus", meta.get("corpus"))
    stored.setdefault("valid", meta.get("valid_path"))
    stored.setdefault("valid_fraction", meta.get("valid_fraction", 0.0))
    stored.setdefault("output", str(checkpoint_path))
    before = TrainOptions.parse(stored, source=str(checkpoint_path))
    changes = dict(changes or {})
    changes.setdefault("output", str(checkpoint_path))
    options = before.replace(**changes)
    refused = sorted(k for k in changes
                     if k not in TrainOptions.RESUMABLE and getattr(options, k) != getattr(before, k))
    if refused:
        was = ", ".join(f"{k}={getattr(before, k)!r}" for k in refused)
        raise ConfigError(f"{', '.join(refused)}: cannot change when resuming (the run has {was}); "
                          "start a new run instead", fields=refused)
    if options.corpus is None:
        raise ConfigError("corpus: give the corpus to resume on", fields=("corpus",))
    _check_outputs(options)
    return _run(ckpt.model, ckpt.tokenizer, options, (meta, ckpt.arrays), events)


def _run(model, tok, options, restore, events):
    from seqgen.training.data import encode_corpus, evaluation_windows, make_windows, split_validation
    from seqgen.training.trainer import Trainer, best_path

    events = events or TrainEvents()
    o = options
    sep_id = tok.separator_id
    ids = encode_corpus(tok, o.corpus)
    if o.valid:
        train_data, valid_data = split_validation(ids, sep_id, o.mode, 0.0)[0], encode_corpus(tok, o.valid)
    else:
        train_data, valid_data = split_validation(ids, sep_id, o.mode, o.valid_fraction, o.seed, what=str(o.corpus))
    train_windows = make_windows(o.mode, train_data, sep_id, o.batch_size, o.seq_length, o.seed, what=str(o.corpus))
    valid_windows = None
    if valid_data is not None:
        valid_windows = evaluation_windows(o.mode, valid_data, sep_id, o.batch_size, o.seq_length, "validation data")
    extra = {"corpus": str(o.corpus), "valid_path": str(o.valid) if o.valid else None,
             "valid_fraction": o.valid_fraction}
    trainer = Trainer(model, tok, train_windows, valid_windows, o, extra_meta=extra)
    if restore:
        trainer.restore(*restore)
    events.on_start(trainer, f"{model!r}: {model.num_params:,} parameters; {len(tok.vocab)} tokens in the "
                             f"vocabulary; {train_windows.num_tokens:,} training tokens, {trainer.total_steps:,} steps")
    log_file = _open_log(o.log)

    def on_eval(t, record):
        if log_file:
            try:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            except OSError as e:
                raise ConfigError(f"log: {o.log}: cannot write ({e.strerror or e})", fields=("log",)) from None
        events.on_eval(t, record)

    def on_sample(t):
        from seqgen.generation.samples import sample as draw
        from seqgen.storage.checkpoint import Checkpoint

        [s] = draw(Checkpoint(t.model, tok, None, {}), length=o.sample_length, stop="", seed=t.step)
        events.on_sample(t, s.text)

    from seqgen.storage.checkpoint import output_lock, remove_stale_temps

    try:
        # One writer per output: a second training told to write here is refused, and the
        # temporary files a killed run left behind are removed once we hold the lock.
        with output_lock(o.output):
            remove_stale_temps(o.output)
            remove_stale_temps(best_path(o.output))
            reason = trainer.run(on_step=events.on_step, on_eval=on_eval, on_sample=on_sample,
                                 sample_every=o.sample_every,
                                 max_seconds=o.max_minutes * 60 if o.max_minutes else None)
    finally:
        if log_file:
            log_file.close()
    best = best_path(o.output) if valid_windows is not None else None
    best_valid = None if math.isinf(trainer.best_valid) else trainer.best_valid
    return TrainResult(reason, trainer.step, Path(o.output), best_valid, best, trainer)


# ---------------------------------------------------------------------------------- outputs
def _check_outputs(options):
    """Refuse unusable output paths before any training time is spent."""
    from seqgen.storage.checkpoint import check_writable
    from seqgen.training.trainer import best_path

    for path, field in ((options.output, "output"), (best_path(options.output), "output"), (options.log, "log")):
        if path is not None:
            try:
                check_writable(path)
            except SeqgenError as e:
                raise ConfigError(f"{field}: {e}", fields=(field,)) from None


def _check_new_output(path: Path, force: bool, field: str):
    from seqgen.storage.checkpoint import check_writable

    if path.exists() and not force:
        raise ConfigError(f"{field}: {path} exists; pass force to overwrite it", fields=(field, "force"))
    try:
        check_writable(path)
    except SeqgenError as e:
        raise ConfigError(f"{field}: {e}", fields=(field,)) from None


def _open_log(path):
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"log: {path}: cannot open ({e.strerror or e})", fields=("log",)) from None


__all__ = ["CorpusStats", "Evaluation", "ModelInfo", "SeqgenError", "TrainEvents", "TrainResult", "evaluate",
           "export", "inspect", "load", "plugins", "resolve_model", "resume", "tokenize", "train"]
