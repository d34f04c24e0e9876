"""The checkpoint schema: every metadata field typed and bounded, and the arrays it implies.

``validate(meta)`` checks the metadata (a dict parsed from the ``meta`` member's JSON) and returns
the arrays the checkpoint must hold: name -> ``ArraySpec`` (dtype, shape; a ``None`` dimension is
free up to ``max_bytes``). Nothing is allocated from the metadata before it passes. Problems are
``SchemaError`` (a ``CheckpointError``) naming the field, e.g. ``training.history.3.train_loss``.

Fields the trainer may add later pass if they are JSON scalars (``extra`` below); a field that
anything reads must be declared here.
"""

import json
from typing import Annotated, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seqgen.errors import CheckpointError, ConfigError
from seqgen.options import TrainOptions

FORMAT = "seqgen-checkpoint"
FORMAT_VERSION = 1
MAX_META_BYTES = 32 << 20
MAX_DEPTH = 8  # deepest legitimate field: training.rng.state.state (4)

BIG = 2**53  # counts (steps, epochs, ...) stay exact as JSON numbers below this
Count = Annotated[int, Field(ge=0, le=BIG)]
Positive = Annotated[int, Field(ge=1, le=BIG)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1)]  # [0, 1)
Text = Annotated[str, Field(max_length=4096)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Scalar = None | bool | int | float | Text


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Open(BaseModel):
    """Known fields typed; unknown ones allowed if they are JSON scalars."""

    model_config = ConfigDict(strict=True, extra="allow")
    __pydantic_extra__: dict[str, Scalar]


class ModelMeta(_Strict):
    cell: Name
    vocab_size: Annotated[int, Field(ge=2, le=2**24)]
    hidden_size: Annotated[int, Field(ge=1, le=2**16)]
    num_layers: Annotated[int, Field(ge=1, le=256)]
    dtype: Literal["float32", "float64"]
    # tag and classify models (written only when they differ from a language model's)
    task: Literal["lm", "tag", "classify"] = "lm"
    bidirectional: bool = False
    labels: Annotated[list[Text], Field(max_length=2**16)] = []
    pooling: Literal["last", "mean"] = "last"


class TokenizerMeta(_Strict):
    name: Name
    module: Text
    options: Annotated[dict[Name, Scalar], Field(max_length=64)]
    vocab: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=2**24)]


class _PCG64State(_Strict):
    state: Annotated[int, Field(ge=0, lt=2**128)]
    inc: Annotated[int, Field(ge=0, lt=2**128)]


class RngMeta(_Strict):
    """numpy's ``PCG64.state`` (the dropout generator)."""

    bit_generator: Literal["PCG64"]
    state: _PCG64State
    has_uint32: Annotated[int, Field(ge=0, le=1)]
    uinteger: Annotated[int, Field(ge=0, lt=2**32)]


class OptimizerMeta(_Strict):
    """``Optimizer.config()``."""

    name: Name
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    momentum: Fraction
    beta1: Fraction
    beta2: Fraction
    rho: Fraction
    eps: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    decay: Annotated[float, Field(gt=0, le=1)]
    decay_every: Positive
    # since round 2 (older files lack them: their defaults are what those runs did)
    schedule: Literal["exponential", "cosine"] = "exponential"
    warmup: Count = 0
    total_steps: Positive | None = None
    min_lr: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    weight_decay: Annotated[float, Field(ge=0, lt=1)] = 0.0


# ``TrainOptions`` as saved (``model_dump(mode="json")``; older files hold a subset): checked by
# the same option object that checks flags and config files, so the two cannot drift apart.
TrainOptionsMeta = TrainOptions


class EvalRecord(_Open):
    """One entry of the training history."""

    step: Count
    epoch: Count
    train_loss: float | None  # mean nats/token since the previous evaluation
    valid_loss: float | None = None
    valid_loss_raw: float | None = None  # with weight averaging: the loss of the optimiser's own weights
    elapsed: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    grad_norm: float | None = None  # mean global gradient norm (before clipping) since the previous evaluation
    grad_norm_max: float | None = None


History = Annotated[list[EvalRecord], Field(max_length=10**6)]


class TrainingMeta(_Open):
    """``Trainer.training_meta()``: everything needed to resume exactly."""

    step: Count
    epoch: Count
    cursor: Count
    rng: RngMeta
    optimizer: OptimizerMeta
    optimizer_t: Count
    history: History
    best_valid: Finite | None
    bad_evals: Count
    # summed NLL and target tokens since the last evaluation
    interval: Annotated[list[Annotated[float, Field(ge=0, allow_inf_nan=False)]],
                        Field(min_length=2, max_length=2)] = [0.0, 0]
    first_loss: Finite | None = None
    # summed and largest gradient norm since the last evaluation, and the steps they cover
    grad_norms: Annotated[list[Annotated[float, Field(ge=0, allow_inf_nan=False)]],
                          Field(min_length=3, max_length=3)] = [0.0, 0.0, 0]
    options: TrainOptionsMeta
    elapsed: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    corpus: Text | None = None
    valid_path: Text | None = None
    valid_fraction: Fraction = 0.0


class SummaryMeta(_Open):
    """Provenance kept by ``seqgen export``: empty, or at least step, epoch and options."""

    step: Count | None = None
    epoch: Count | None = None
    options: TrainOptionsMeta | None = None
    history: History | None = None
    best_valid: Finite | None = None
    corpus: Text | None = None
    elapsed: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _complete(self):
        if self.model_fields_set and None in (self.step, self.epoch, self.options):
            raise ValueError("a summary needs step, epoch and options")
        return self


class CheckpointMeta(_Strict):
    format: Literal["seqgen-checkpoint"]
    format_version: Literal[1]
    seqgen_version: Text
    model: ModelMeta
    tokenizer: TokenizerMeta
    training: TrainingMeta | None
    summary: SummaryMeta | None


class ArraySpec(NamedTuple):
    dtype: np.dtype
    shape: tuple  # None for a dimension that may vary
    max_bytes: int | None = None  # for shapes with a free dimension

    @property
    def nbytes(self):
        """Bytes of data (the most, for a free dimension)."""
        if self.max_bytes is not None:
            return self.max_bytes
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


class SchemaError(CheckpointError):
    """Checkpoint metadata breaks the schema (the message names the field, not the file)."""


def parse(raw):
    """The ``meta`` member's bytes -> a dict, within size and nesting bounds."""
    if len(raw) > MAX_META_BYTES:
        raise SchemaError(f"metadata of {len(raw):,} bytes is larger than {MAX_META_BYTES:,}")
    try:
        meta = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SchemaError(f"metadata is not JSON ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SchemaError("not a seqgen checkpoint (no seqgen metadata)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        from seqgen import __version__

        raise SchemaError(f"checkpoint format version {str(version)[:20]} is not supported by seqgen {__version__} "
                          f"(expects {FORMAT_VERSION})")
    _check_depth(meta)
    return meta


def _check_depth(value):
    stack = [(value, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise SchemaError(f"metadata field {where.lstrip('.')[:120]} is nested too deeply")
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{where}.{str(k)[:40]}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}.{i}") for i, v in enumerate(value))


def validate(meta):
    """Check metadata against the schema and its own consistency; name -> ArraySpec of the
    arrays the checkpoint must hold (``train/state`` is optional)."""
    from seqgen.engine.model import ModelConfig

    try:
        checked = CheckpointMeta.model_validate(meta)
    except ValidationError as e:
        raise SchemaError(_describe(e)) from None
    try:
        config = ModelConfig(**meta["model"])
    except ConfigError as e:
        raise SchemaError(f"model: {e}") from None
    vocab = checked.tokenizer.vocab
    if len(vocab) != config.vocab_size:
        raise SchemaError(f"tokenizer.vocab: {len(vocab)} tokens, but model.vocab_size is {config.vocab_size}")
    dtype = np.dtype(config.dtype)
    specs = {f"param/{k}": ArraySpec(dtype, shape) for k, shape in config.param_shapes().items()}
    t = checked.training
    if t is not None:
        slots = _optimizer_slots(t.optimizer)
        if t.options.optimizer != t.optimizer.name:
            raise SchemaError(f"training.options.optimizer {t.options.optimizer!r} does not match "
                              f"training.optimizer.name {t.optimizer.name!r}")
        for slot in slots:
            for k, shape in config.param_shapes().items():
                specs[f"optim/{slot}/{k}"] = ArraySpec(dtype, (int(np.prod(shape)),))
        if t.options.ema:  # the model is the weight average; the optimiser's weights are kept apart
            specs.update({f"train/weights/{k}": ArraySpec(dtype, shape) for k, shape in config.param_shapes().items()})
        L, S, H, B = config.num_layers * config.directions, config.state_size, config.hidden_size, t.options.batch_size
        specs["train/state"] = ArraySpec(dtype, (L, S, None, H), L * S * B * H * dtype.itemsize)
    return specs


def _optimizer_slots(opt):
    from seqgen.options import OPTIMIZER_SLOTS

    if opt.name not in OPTIMIZER_SLOTS:
        raise SchemaError(f"training.optimizer.name: unknown optimizer {opt.name!r}; "
                          f"choose one of {', '.join(OPTIMIZER_SLOTS)}")
    return OPTIMIZER_SLOTS[opt.name]


def _describe(error):
    """A pydantic ValidationError -> 'field.path: problem (got value)', its first error only."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "metadata"
    got = first.get("input")
    shown = f" (got {type(got).__name__} {_short(got)})" if first["type"] != "missing" else ""
    more = f"; {error.error_count() - 1} more problem(s)" if error.error_count() > 1 else ""
    return f"metadata field {where}: {first['msg']}{shown}{more}"


def _short(value):
    text = repr(value) if not isinstance(value, (dict, list)) else f"of {len(value)} item(s)"
    return text if len(text) <= 60 else text[:57] + "..."
