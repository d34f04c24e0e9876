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

import numpy as np

from seqgen.errors import CheckpointError, ConfigError, SeqgenError
from seqgen.options import EvalOptions, PredictOptions, TrainOptions
from seqgen.storage import shipped


# ---------------------------------------------------------------------------------- models
def resolve_model(model=None) -> Path:
    """A checkpoint path, or the file of a shipped model's name (None: the default text
    model). CheckpointError if it is neither."""
    return shipped.resolve(model)


def load(model=None):
    """A ``Checkpoint`` from a path, a shipped model's name, a Checkpoint, or None (default)."""
    from seqgen.generation.samples import load_model

    return load_model(model)


def models():
    """The shipped models: name -> catalog entry (file, description, recipe, valid_loss), and
    the name of the default text model."""
    return shipped.catalog(), shipped.DEFAULT_TEXT_MODEL


def best_path(output):
    """Where training keeps the best checkpoint by validation loss: model.npz -> model.best.npz."""
    from seqgen.training.trainer import best_path as path

    return path(output)


# ---------------------------------------------------------------------------------- sampling
def sample(options, ckpt=None):
    """Draw ``options.n`` samples (``SampleOptions``): a SampleResult(seed, samples). A fresh
    seed is drawn and returned when the options have none."""
    from seqgen.generation.samples import draw

    return draw(options, ckpt)


def stream_sample(options, ckpt=None):
    """One text sample as it is generated: pieces of text whose concatenation is the text
    ``sample`` gives for the same options."""
    from seqgen.generation.samples import stream_text

    return stream_text(options, ckpt)


def fresh_seed():
    """A new random seed, for runs that were not given one."""
    from seqgen.generation.samples import fresh_seed as draw_seed

    return draw_seed()


def write_midi_sample(ckpt, sample_, path, options):
    """Write one sample of a MIDI model to ``path`` (at the options' or the primer's tempo)."""
    from seqgen.generation.samples import write_midi

    write_midi(ckpt.tokenizer, sample_, path, options)


def midi_sample_bytes(ckpt, sample_, options):
    """One sample of a MIDI model as the bytes of a .mid file."""
    from seqgen.generation.samples import midi_bytes

    return midi_bytes(ckpt.tokenizer, sample_, options)


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


class TaskEvaluation(NamedTuple):
    """The scores of a tagger or classifier on a labelled corpus."""

    task: str  # "tag" or "classify"
    items: int  # sentences or lines scored
    targets: int  # labels scored: tokens (tag) or items (classify)
    loss: float  # mean NLL per label, nats
    accuracy: float
    labels: dict  # label -> seqgen.training.metrics.Score (precision, recall, f1, support)
    entity: object  # tag with BIO labels: entity-level Score (conlleval's count); else None


def evaluate(options: EvalOptions) -> Evaluation | TaskEvaluation:
    """Mean loss of a model on a corpus, in the windows of the mode it was trained in; for a
    tag or classify model also accuracy, per-label precision/recall/F1 and (BIO tags)
    entity-level F1 on a labelled corpus."""
    from seqgen.training.data import encode_corpus, evaluation_windows
    from seqgen.training.trainer import mean_loss

    ckpt = load(options.model)
    if ckpt.model.config.task != "lm":
        return _evaluate_task(ckpt, options)
    tok = ckpt.tokenizer
    ids = encode_corpus(tok, options.corpus)
    mode = ((ckpt.training or ckpt.summary or {}).get("options") or {}).get("mode", "stream")
    windows = evaluation_windows(mode, ids, tok.separator_id, options.batch_size, options.seq_length,
                                 str(options.corpus))
    loss = mean_loss(ckpt.model, windows.iter_windows())
    return Evaluation(windows.num_tokens, loss, math.exp(loss), loss / math.log(2))


def _evaluate_task(ckpt, options):
    from seqgen.training import metrics
    from seqgen.training.data import LabelledWindows
    from seqgen.training.trainer import mean_loss

    model, tok = ckpt.model, ckpt.tokenizer
    c = model.config
    examples = list(tok.iter_examples(options.corpus))
    items = _encode_for(model, tok, examples)
    loss = mean_loss(model, LabelledWindows(items, c.task, options.batch_size, shuffle=False).iter_windows())
    predicted = _label_items(model, items, options.batch_size)
    if c.task == "tag":
        gold_seqs = [list(ex.labels) for ex in examples]
        pred_seqs = [[c.labels[i] for i in ids] for ids, _ in predicted]
        gold = [g for seq in gold_seqs for g in seq]
        pred = [p for seq in pred_seqs for p in seq]
        entity = metrics.entity_f1(gold_seqs, pred_seqs) if metrics.is_bio(c.labels) else None
    else:
        gold = [ex.labels for ex in examples]
        pred = [c.labels[ids[0]] for ids, _ in predicted]
        entity = None
    return TaskEvaluation(c.task, len(examples), len(gold), loss, metrics.accuracy(gold, pred),
                          metrics.per_label(gold, pred, c.labels), entity)


# ---------------------------------------------------------------------------------- prediction
class Prediction(NamedTuple):
    """One labelled item."""

    tokens: list  # the item's tokens as read
    labels: list | str  # predicted: one label per token (tag), or the item's label (classify)
    probability: list | float  # of each predicted label
    gold: list | str | None  # the file's labels, when it has them
    text: str | None  # the item as written (classify)
    where: str  # "file:line"


def _encode_for(model, tok, examples):
    """Examples -> LabelledItems for a model, whole (no cutting)."""
    from seqgen.training.data import encode_examples

    return encode_examples(tok, examples, model.config.labels, model.config.task, seq_length=10**9)


def _label_items(model, items, batch_size):
    """Items -> [(predicted label ids, their probabilities)] in order."""
    out = []
    for b in range(0, len(items), batch_size):
        batch = items[b:b + batch_size]
        T = max(len(i.ids) for i in batch)
        inputs = np.zeros((T, len(batch)), dtype=np.int32)
        for col, item in enumerate(batch):
            inputs[:len(item.ids), col] = item.ids
        lengths = np.array([len(i.ids) for i in batch])
        probs = model.predict(inputs, lengths)
        for col, item in enumerate(batch):
            p = probs[:len(item.ids), col] if model.config.task == "tag" else probs[col][None]
            best = p.argmax(axis=1)
            out.append((best, p[np.arange(len(best)), best]))
    return out


class Predictions(NamedTuple):
    task: str  # the model's task: "tag" or "classify"
    items: list  # a Prediction per item of the file, in order


def predict(options: PredictOptions) -> Predictions:
    """Label every item of ``options.file`` with a tag or classify model. Gold labels in the
    file, if any, are checked against the model's labels and returned beside the predictions."""
    ckpt = load(options.model)
    _check_labelling(ckpt, options.model)
    examples = list(ckpt.tokenizer.iter_examples(options.file, labelled=False))
    return _label_examples(ckpt, examples, options.batch_size)


def predict_items(ckpt, items, batch_size=32) -> Predictions:
    """Label in-memory items with a tag or classify model (a loaded Checkpoint): for a tagger a
    list of token lists (each token one token of the model's tokenizer), for a classifier a
    list of texts. Tokens unseen in training become <UNK>, as in ``predict``. ConfigError naming
    ``items[i]`` (or ``items[i][j]``) for an item the model cannot take."""
    from seqgen.plugins.labelled import Example

    _check_labelling(ckpt, "model")
    tok, task = ckpt.tokenizer, ckpt.model.config.task
    examples = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if task == "tag":
            if isinstance(item, str) or not isinstance(item, (list, tuple)):
                raise ConfigError(f"{where}: a tag model takes a list of tokens per item", fields=("items",))
            tokens = []
            for j, token in enumerate(item):
                parsed = tok.parse_prime(token) if isinstance(token, str) else None
                if not parsed or len(parsed) != 1:
                    raise ConfigError(f"{where}[{j}]: {token!r} is not one token (a non-empty string without "
                                      "spaces)", fields=("items",))
                tokens.extend(parsed)
            examples.append(Example(tokens, None, where))
        else:
            if not isinstance(item, str):
                raise ConfigError(f"{where}: a classify model takes a text (a string) per item", fields=("items",))
            tokens = tok.parse_prime(item)
            examples.append(Example(tokens, None, where, item))
        if not tokens:
            raise ConfigError(f"{where}: no tokens", fields=("items",))
    return _label_examples(ckpt, examples, batch_size)


def _check_labelling(ckpt, what):
    if ckpt.model.config.task == "lm":
        raise ConfigError(f"{what} is a language model: it generates (seqgen sample) and has no labels to predict")


def _label_examples(ckpt, examples, batch_size) -> Predictions:
    """Examples (seqgen.plugins.labelled) -> Predictions: the one labelling path of ``predict``
    and ``predict_items``."""
    model, tok = ckpt.model, ckpt.tokenizer
    c = model.config
    items = _encode_for(model, tok, examples)
    result = []
    for ex, (ids, probs) in zip(examples, _label_items(model, items, batch_size)):
        if c.task == "tag":
            labels, probability = [c.labels[i] for i in ids], [round(float(x), 6) for x in probs]
        else:
            labels, probability = c.labels[ids[0]], round(float(probs[0]), 6)
        result.append(Prediction(ex.tokens, labels, probability, ex.labels, ex.text, ex.where))
    return Predictions(c.task, result)


def prediction_record(p: Prediction, task: str) -> dict:
    """One prediction as JSON (``seqgen predict --format json``, ``POST /v1/predict``): tag
    ``tokens``, ``labels``, ``probability`` (a list); classify ``text``, ``label``,
    ``probability``; ``gold`` when known."""
    if task == "tag":
        record = {"tokens": p.tokens, "labels": p.labels, "probability": p.probability}
    else:
        record = {"text": p.text, "label": p.labels, "probability": p.probability}
    if p.gold is not None:
        record["gold"] = p.gold
    return record


def format_predictions(predictions, task, fmt) -> str:
    """Predictions as text: ``json`` (one object per item and line), ``conll`` (tag: token,
    gold label if known, predicted label per line, a blank line between items; the layout
    conlleval reads) or ``tsv`` (tag: tokens<TAB>labels per item; classify: label<TAB>text)."""
    lines = []
    if fmt == "conll" and task != "tag":
        raise ConfigError("format: conll is for tag models; use tsv or json for a classifier", fields=("format",))
    for p in predictions:
        if fmt == "json":
            lines.append(json.dumps(prediction_record(p, task), ensure_ascii=False))
        elif fmt == "conll":
            for i, token in enumerate(p.tokens):
                gold = [p.gold[i]] if p.gold is not None else []
                lines.append("\t".join([token, *gold, p.labels[i]]))
            lines.append("")
        elif task == "tag":
            lines.append(" ".join(p.tokens) + "\t" + " ".join(p.labels))
        else:
            lines.append(f"{p.labels}\t{p.text}")
    return "\n".join(lines) + ("\n" if lines and lines[-1] != "" else "")


def write_predictions(options: PredictOptions, predictions: Predictions) -> str | None:
    """Format predictions and write them atomically to ``options.output``; returns the text
    when there is no output file."""
    from seqgen.storage.atomic import write_atomically

    text = format_predictions(predictions.items, predictions.task, options.format)
    if options.output is None:
        return text
    _check_new_output(Path(options.output), options.force, "output")
    write_atomically(Path(options.output), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return None


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
    from seqgen.training import seeds

    if options.corpus is None:
        raise ConfigError("corpus: give the corpus to train on", fields=("corpus",))
    _check_outputs(options)
    _check_new_checkpoint(options)
    tok = get_tokenizer(options.tokenizer)(**options.tokenizer_options)
    if options.task != "lm":
        return _train_task(tok, options, events)
    # augment: the vocabulary must hold the augmented training items' tokens (_run augments them)
    documents = itertools.chain(tok.augment(tok.iter_documents(options.corpus)),
                                tok.iter_documents(options.valid) if options.valid else ())
    tok.fit(documents)
    m = options.model_options
    model = Model.create(m.cell, len(tok.vocab), m.hidden_size, m.layers, seed=seeds.sequence(options.seed, "init"),
                         dtype=m.dtype,
                         init=m.init)
    return _run(model, tok, options, None, events)


def _check_task_tokenizer(tok, task):
    from seqgen.plugins.labelled import LabelledTokenizer

    if not isinstance(tok, LabelledTokenizer):
        raise ConfigError(f"`task` {task} needs a labelled corpus, but `tokenizer` {tok.name!r} reads no labels: "
                          "use `tokenizer` conll (CoNLL columns, for tag) or labelled (label<TAB>text lines, for "
                          "classify)",
                          fields=("task", "tokenizer"))
    if tok.task != task:
        raise ConfigError(f"`task` {task}: `tokenizer` {tok.name!r} reads labels for task {tok.task}",
                          fields=("task", "tokenizer"))


def _train_task(tok, options, events):
    from seqgen.engine.model import Model
    from seqgen.errors import CorpusError
    from seqgen.training import seeds

    _check_task_tokenizer(tok, options.task)
    examples = list(tok.iter_examples(options.corpus))
    tok.fit(itertools.chain((ex.tokens for ex in examples),
                            (ex.tokens for ex in tok.iter_examples(options.valid)) if options.valid else ()))
    labels = sorted({label for ex in examples for label in (ex.labels if options.task == "tag" else [ex.labels])})
    if len(labels) < 2:
        raise CorpusError(f"{options.corpus}: every item has the label {labels[0]!r}: nothing to learn")
    m = options.model_options
    model = Model.create(m.cell, len(tok.vocab), m.hidden_size, m.layers, seed=seeds.sequence(options.seed, "init"),
                         dtype=m.dtype,
                         init=m.init, task=m.task, bidirectional=m.bidirectional, labels=labels, pooling=m.pooling)
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
                  tokenizer=ckpt.tokenizer.name,
                  # an option left unset (None, e.g. midi's track) is its default: not a value to give again
                  tokenizer_options={k: v for k, v in ckpt.tokenizer.config.items() if v is not None})
    if c.task != "lm":
        stored.update(task=c.task, bidirectional=c.bidirectional, pooling=c.pooling)
    stored.setdefault("corpus", meta.get("corpus"))
    stored.setdefault("valid", meta.get("valid_path"))
    stored.setdefault("valid_fraction", meta.get("valid_fraction", 0.0))
    stored.setdefault("output", str(checkpoint_path))
    before = TrainOptions.parse(stored, source=str(checkpoint_path))
    changes = dict(changes or {})
    changes.setdefault("output", str(checkpoint_path))
    if "tokenizer_options" in changes:  # options given again: only those named are compared
        changes["tokenizer_options"] = {**before.tokenizer_options, **changes["tokenizer_options"]}
    options = before.replace(**changes)
    refused = sorted(k for k in changes
                     if (k not in TrainOptions.RESUMABLE or k in _schedule_horizon(before))
                     and _effective(options, k) != _effective(before, k))
    if refused:
        raise ConfigError("; ".join(f"{k}: cannot change when resuming (the run has {getattr(before, k)!r})"
                                    for k in refused) + "; start a new run instead", fields=refused)
    if options.corpus is None:
        raise ConfigError("corpus: give the corpus to resume on", fields=("corpus",))
    _check_outputs(options)
    moved = Path(options.output).resolve() != Path(checkpoint_path).resolve()
    if moved:  # continuing into a new file: it must not clobber one, and it starts with the run's best
        _check_new_checkpoint(options)
        source_best, target_best = best_path(checkpoint_path), best_path(options.output)
        if source_best.exists():
            checkpoint.copy(source_best, target_best)
    return _run(ckpt.model, ckpt.tokenizer, options, (meta, ckpt.arrays), events, save_first=moved)


def _schedule_horizon(options):
    """Settings that fix the learning rate of every step: the cosine schedule decays over the
    run's length, so a resumed run must keep it."""
    return ("steps", "epochs") if options.schedule == "cosine" else ()


def _effective(options, field):
    """The value a setting has in effect: an unset learning rate is the optimiser's default."""
    if field == "lr" and options.lr is None:
        from seqgen.training.optim import DEFAULT_LR

        return DEFAULT_LR[options.optimizer]
    return getattr(options, field)


def _check_new_checkpoint(options):
    """A new run (or a resumed one written to a new file) does not overwrite a checkpoint or its
    best copy unless ``force`` is set."""
    for path in (Path(options.output), best_path(options.output)):
        if path.exists() and not options.force:
            raise ConfigError(f"output: {path} exists; continue it with `resume`, choose another output, or "
                              "overwrite it with `force`", fields=("output", "resume", "force"))


def _run(model, tok, options, restore, events, save_first=False):
    from seqgen.training.data import augment_training, encode_corpus, evaluation_windows, make_windows, split_validation
    from seqgen.training.trainer import Trainer, best_path

    events = events or TrainEvents()
    o = options
    if model.config.task != "lm":
        train_windows, valid_windows = _task_windows(model, tok, o)
    else:
        sep_id = tok.separator_id
        ids = encode_corpus(tok, o.corpus)
        if o.valid:
            train_data, valid_data = split_validation(ids, sep_id, o.mode, 0.0)[0], encode_corpus(tok, o.valid)
        else:
            train_data, valid_data = split_validation(ids, sep_id, o.mode, o.valid_fraction, o.seed,
                                                      what=str(o.corpus))
        train_data = augment_training(tok, train_data, sep_id, o.mode)  # training items only
        train_windows = make_windows(o.mode, train_data, sep_id, o.batch_size, o.seq_length, o.seed,
                                     what=str(o.corpus))
        valid_windows = None
        if valid_data is not None:
            valid_windows = evaluation_windows(o.mode, valid_data, sep_id, o.batch_size, o.seq_length,
                                               "validation data")
    extra = {"corpus": str(o.corpus), "valid_path": str(o.valid) if o.valid else None,
             "valid_fraction": o.valid_fraction}
    trainer = Trainer(model, tok, train_windows, valid_windows, o, extra_meta=extra)
    if restore:
        trainer.restore(*restore)
        if save_first:  # the new output holds nothing yet: write it even if no step is left
            trainer.saved_step = None
    labels = f", {len(model.config.labels)} labels" if model.config.labels else ""
    events.on_start(trainer, f"{model!r}: {model.num_params:,} parameters; {len(tok.vocab)} tokens in the "
                             f"vocabulary{labels}; {train_windows.num_tokens:,} training tokens, "
                             f"{trainer.total_steps:,} steps")
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
                                 sample_every=o.sample_every if model.config.task == "lm" else None,
                                 max_seconds=o.max_minutes * 60 if o.max_minutes else None)
    finally:
        if log_file:
            log_file.close()
    best = best_path(o.output) if valid_windows is not None else None
    best_valid = None if math.isinf(trainer.best_valid) else trainer.best_valid
    return TrainResult(reason, trainer.step, Path(o.output), best_valid, best, trainer)


def _task_windows(model, tok, o):
    """Training and validation windows of a tag or classify run, labels by the model's."""
    from seqgen.training.data import LabelledWindows, encode_examples, split_labelled

    c = model.config
    _check_task_tokenizer(tok, c.task)
    examples = list(tok.iter_examples(o.corpus))
    if o.valid:
        train_ex, valid_ex = examples, list(tok.iter_examples(o.valid))
    else:
        train_ex, valid_ex = split_labelled(examples, o.valid_fraction, o.seed, what=str(o.corpus))
    train = LabelledWindows(encode_examples(tok, train_ex, c.labels, c.task, o.seq_length), c.task, o.batch_size,
                            o.seed, what=str(o.corpus))
    valid = None
    if valid_ex:
        valid = LabelledWindows(encode_examples(tok, valid_ex, c.labels, c.task, o.seq_length), c.task,
                                o.batch_size, shuffle=False, what="validation data")
    return train, valid


# ---------------------------------------------------------------------------------- outputs
def _check_outputs(options):
    """Refuse unusable output paths before any training time is spent."""
    from seqgen.training.trainer import best_path

    for path, field in ((options.output, "output"), (best_path(options.output), "output"), (options.log, "log")):
        if path is not None:
            _check_writable(path, field)


def _check_new_output(path: Path, force: bool, field: str):
    if path.exists() and not force:
        raise ConfigError(f"{field}: {path} exists; pass force to overwrite it", fields=(field, "force"))
    _check_writable(path, field)


def check_writable(path, field="output"):
    """ConfigError (one line, naming ``field``) unless a file can be written at ``path``: call it
    before work whose result goes there."""
    _check_writable(Path(path), field)


def _check_writable(path: Path, field: str):
    from seqgen.storage.checkpoint import check_writable

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


__all__ = ["CorpusStats", "Evaluation", "ModelInfo", "Prediction", "Predictions", "SeqgenError", "TaskEvaluation",
           "TrainEvents", "TrainResult", "best_path", "check_writable", "evaluate", "export", "format_predictions",
           "fresh_seed", "inspect", "load", "midi_sample_bytes", "models", "plugins", "predict", "predict_items",
           "prediction_record", "resolve_model", "resume", "sample", "stream_sample", "tokenize", "train",
           "write_midi_sample", "write_predictions"]
