"""Typed, validated options shared by every front end: the CLI builds them from flags (and
``--config`` TOML files), the service from JSON bodies, sweeps from a search space.

Each option object is validated once, when it is made (``parse``); the library then trusts it.
A bad value raises ``ConfigError`` naming the field (``"temperature: must be > 0"``); front
ends translate the field name into their own words (a flag, a JSON path). ``docs/options.md``
lists every field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seqgen.errors import ConfigError

MAX_SEED = 2**63 - 1
MAX_LENGTH = 1_000_000  # tokens per sample: bounds what one request or command can allocate


class Options(BaseModel):
    """Base of all option objects: unknown fields are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @classmethod
    def parse(cls, data: dict[str, Any], source: str | None = None):
        """``data`` (from flags, TOML or JSON) -> a validated object, or one ConfigError line per
        bad field, ``source`` (a file name) in front."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            fields = [str(item["loc"][0]) if item["loc"] else _named_field(item["msg"]) for item in e.errors()]
            # settings a message quotes as names (`lr`), so front ends write them their way too
            fields += [name for item in e.errors() for name in re.findall(r"`(\w+)`", item["msg"])
                       if name in cls.model_fields and name not in fields]
            raise ConfigError(_describe(e, source), fields=() if source else [f for f in fields if f]) from None

    def replace(self, **changes):
        """A validated copy with some fields changed."""
        return type(self).parse({**self.model_dump(), **changes})


def _named_field(message):
    """The field a whole-object check names at the start of its message ("beam: ...")."""
    match = re.match(r"(?:Value error, )?(\w+):", message)
    return match.group(1) if match else None


def _describe(error: ValidationError, source: str | None) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        # a whole-object check (no location) names its field itself: "beam: ..."
        lines.append(f"{'.'.join(str(p) for p in item['loc'])}: {message}" if item["loc"] else message)
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(lines)


class SampleOptions(Options):
    """How to draw samples from a model (``seqgen sample``, ``POST /v1/samples``)."""

    model: str | None = Field(None, description="checkpoint path or shipped model name; None: the default text model")
    n: int = Field(1, ge=1, le=100_000, description="number of samples")
    length: int = Field(200, ge=1, le=MAX_LENGTH, description="maximum tokens per sample")
    temperature: float = Field(1.0, gt=0, le=1e6, description="> 0; lower is more conservative")
    top_k: int = Field(0, ge=0, description="sample from the k likeliest tokens (0: off)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling, in (0, 1]")
    greedy: bool = Field(False, description="always take the likeliest token")
    beam: int | None = Field(None, ge=1, le=1024, description="beam search of this width")
    prime: str | None = Field(None, max_length=100_000, description="text to start from")
    prime_midi: Path | None = Field(None, description="a .mid file to start from (library and CLI only)")
    unknown: Literal["error", "skip", "unk"] = Field("error", description="primer tokens the model does not know")
    stop: str | None = Field(None, max_length=10_000,
                             description="stop once the output contains this text; None: at the item separator; "
                                         "'': never")
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="random seed; None: a fresh one, reported with the samples")
    include_prime: bool = Field(True, description="put the primer in front of each sample")
    tempo: float | None = Field(None, ge=4, le=1000,
                                description="MIDI: beats per minute (default: the primer's, else 120)")
    program: int = Field(0, ge=0, le=127, description="MIDI: General MIDI instrument")
    velocity: int = Field(80, ge=1, le=127, description="MIDI: note velocity")
    repetition_penalty: float = Field(
        1.0, ge=1, le=100, description="divide the positive logits of tokens seen in the last repetition_window "
                                      "tokens by this, multiply the negative ones (CTRL's penalty; 1: off)")
    repetition_window: int = Field(0, ge=0, le=MAX_LENGTH,
                                   description="tokens the repetition penalty looks back (0: the whole sample, primer "
                                               "included)")
    no_repeat_ngram: int = Field(0, ge=0, le=1000, description="never complete an n-gram of this many tokens that the "
                                                               "sample (primer included) already holds (0: off)")
    max_polyphony: int | None = Field(None, ge=1, le=128,
                                      description="MIDI (poly encoding): at most this many notes sound per step")
    min_pitch: int | None = Field(None, ge=0, le=127, description="MIDI: no note below this pitch (60 = middle C)")
    max_pitch: int | None = Field(None, ge=0, le=127, description="MIDI: no note above this pitch")

    RULES: ClassVar[tuple] = ("repetition_penalty", "no_repeat_ngram", "max_polyphony", "min_pitch", "max_pitch")

    @model_validator(mode="after")
    def _n_fits_beam(self):
        if self.beam is not None and self.n > self.beam:
            raise ValueError(f"beam: cannot return n={self.n} samples from a beam of {self.beam}; use beam >= n")
        if self.greedy and self.beam is not None:
            raise ValueError("greedy: greedy and beam exclude each other")
        if self.beam is not None:
            for name in self.RULES:
                if getattr(self, name) not in (None, 0, 1.0):
                    raise ValueError(f"{name}: applies to sampling and greedy, not to beam search")
        if self.min_pitch is not None and self.max_pitch is not None and self.min_pitch > self.max_pitch:
            raise ValueError(f"min_pitch: must not be above the maximum pitch ({self.min_pitch} > {self.max_pitch})")
        return self


# The optimisers and the state each keeps per parameter (saved in checkpoints as optim/SLOT/NAME).
OPTIMIZER_SLOTS = {"sgd": ("velocity",), "adagrad": ("accum",), "rmsprop": ("sq",), "adam": ("m1", "m2")}

_BIG = 2**31 - 1  # sizes and counts: bounded so no setting can ask for absurd allocations
TokenizerOptionValue = bool | int | float | str


class ModelOptions(Options):
    """The architecture of a new model."""

    cell: str = Field("lstm", description="recurrent cell: rnn, lstm or gru")
    hidden_size: int = Field(128, ge=1, le=65_536, description="units per layer (n_a)")
    layers: int = Field(1, ge=1, le=64, description="stacked recurrent layers")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between stacked layers")
    dropout_output: float = Field(0.0, ge=0, lt=1,
                                  description="dropout on the top layer's output, before the output layer")
    dropout_masks: Literal["step", "sequence"] = Field(
        "step", description="step: a new dropout mask at every step; sequence: one mask per sequence and window, "
                            "the same at every step (Gal & Ghahramani's variational dropout)")
    init: Literal["orthogonal", "small"] = Field("orthogonal", description="initialisation scheme")
    dtype: Literal["float32", "float64"] = Field("float32", description="float type of weights and activations")
    task: Literal["lm", "tag", "classify"] = Field(
        "lm", description="lm: predict the next token; tag: a label per token; classify: a label per item "
                          "(tag and classify need a labelled corpus: tokenizer conll or labelled)")
    bidirectional: bool = Field(False, description="tag/classify: a second recurrence per layer reads each item "
                                                   "backwards; both outputs are concatenated")
    pooling: Literal["last", "mean"] = Field(
        "last", description="classify: the final states of both directions (last) or the mean over steps (mean)")

    @field_validator("cell")
    @classmethod
    def _known_cell(cls, cell):
        from seqgen.engine.cells import CELLS

        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        return cell

    @model_validator(mode="after")
    def _bidirectional_needs_a_task(self):
        if self.bidirectional and self.task == "lm":
            raise ValueError("bidirectional: a language model cannot read ahead; use it with task tag or classify")
        return self


class TrainOptions(ModelOptions):
    """Everything ``seqgen train`` needs: data, model, optimisation, evaluation and outputs.
    Flags, ``--config`` TOML files and sweeps all fill this one object."""

    corpus: Path | None = Field(None, description="training corpus: a file or a directory")
    valid: Path | None = Field(None, description="separate validation corpus (else --valid-fraction is held out)")
    tokenizer: str = Field("chars", description="tokenizer plugin (see `seqgen plugins`)")
    tokenizer_options: dict[str, TokenizerOptionValue] = Field(
        default_factory=dict, description="tokenizer options (-O KEY VALUE; the [option] table of a config file)")
    mode: Literal["stream", "items"] = Field(
        "stream", description="stream: B parallel streams, state carried (truncated BPTT); items: one item per row")
    seq_length: int = Field(64, ge=1, le=1_000_000, description="steps per window (T)")
    batch_size: int = Field(32, ge=1, le=100_000, description="streams or items per batch (B)")
    steps: int | None = Field(None, ge=1, le=_BIG,
                              description="total optimiser steps (default: from epochs, else 1 epoch)")
    epochs: float | None = Field(None, gt=0, le=1e6, description="passes over the training data")
    optimizer: Literal["sgd", "adagrad", "rmsprop", "adam"] = Field("adam", description="optimiser")
    lr: float | None = Field(None, gt=0, allow_inf_nan=False,
                             description="learning rate (default: sgd/adagrad 0.01, rmsprop/adam 0.002)")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum")
    schedule: Literal["exponential", "cosine"] = Field(
        "exponential", description="learning rate over the run: exponential (decay per decay_every steps) or cosine "
                                   "(from lr down to min_lr at the last step)")
    decay: float = Field(1.0, gt=0, le=1,
                         description="exponential schedule: learning-rate factor per decay_every steps")
    decay_every: int = Field(1000, ge=1, le=_BIG, description="exponential schedule: steps per learning-rate decay")
    min_lr: float = Field(0.0, ge=0, allow_inf_nan=False, description="cosine schedule: the learning rate at the end")
    warmup: int = Field(0, ge=0, le=_BIG, description="steps over which the learning rate rises linearly to lr")
    weight_decay: float = Field(0.0, ge=0, lt=1,
                                description="decoupled weight decay of the weight matrices (AdamW's), per unit of lr")
    ema: float = Field(0.0, ge=0, lt=1,
                       description="keep an exponential moving average of the weights with this decay per step "
                                   "(Polyak averaging; 0.999 averages over about the last 1000 steps): evaluation, "
                                   "checkpoints and samples use the average; 0 turns it off")
    clip_value: float = Field(5.0, ge=0, allow_inf_nan=False,
                              description="clip each gradient element to [-c, c]; 0 turns it off")
    clip_norm: float | None = Field(None, gt=0, allow_inf_nan=False, description="clip the global gradient norm")
    reduction: Literal["mean", "sum"] = Field(
        "mean", description="gradient of the loss per token (mean) or summed over each sequence (sum, as the notes)")
    valid_fraction: float = Field(0.1, ge=0, lt=1, description="share of the corpus held out for validation")
    eval_every: int = Field(200, ge=1, le=_BIG, description="steps between evaluations and checkpoints")
    patience: int | None = Field(None, ge=1, le=_BIG,
                                 description="stop after this many evaluations without improvement")
    max_minutes: float | None = Field(None, gt=0, le=1e7, description="stop (and save) after this much time")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of initialisation, shuffling and dropout")
    output: Path = Field(Path("model.npz"), description="checkpoint path; the best by validation goes to NAME.best.npz")
    sample_every: int | None = Field(None, ge=1, le=_BIG, description="print a sample every K steps")
    sample_length: int = Field(200, ge=1, le=MAX_LENGTH, description="tokens per progress sample")
    log: Path | None = Field(None, description="append each evaluation to this file as a JSON line")
    force: bool = Field(False, description="overwrite an existing output checkpoint (a new run refuses to, by default)")

    @field_validator("output")
    @classmethod
    def _output_names_a_file(cls, path):
        if str(path) in ("", "."):
            raise ValueError("must name a file")
        return path

    # Options that may differ when a run is resumed: they change how long it runs and what it
    # reports, not the update it computes next. Any other difference is refused.
    RESUMABLE: ClassVar[frozenset] = frozenset({"corpus", "steps", "epochs", "eval_every", "patience", "max_minutes",
                                                "output", "sample_every", "sample_length", "log", "force"})

    @model_validator(mode="after")
    def _no_ignored_settings(self):
        """A setting the run would ignore is a mistake to report, not to drop."""
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum: applies to the sgd optimizer only, not {self.optimizer}")
        if self.pooling != "last" and self.task != "classify":
            raise ValueError("pooling: applies to task classify only")
        if self.schedule != "exponential" and self.decay != 1.0:
            raise ValueError("decay: applies to the exponential schedule only")
        if self.schedule != "cosine" and self.min_lr:
            raise ValueError("min_lr: applies to the cosine schedule only")
        if self.lr is not None and self.min_lr > self.lr:
            raise ValueError(f"min_lr: must not exceed `lr` ({self.lr})")
        if self.dropout and self.layers == 1:
            raise ValueError("dropout: acts between stacked layers; with one layer use `dropout_output`")
        if self.dropout_masks != "step" and not (self.dropout or self.dropout_output):
            raise ValueError("dropout_masks: no dropout is on (set `dropout` or `dropout_output`)")
        if self.sample_every is not None and self.task != "lm":
            raise ValueError(f"sample_every: applies to language models only; a {self.task} model does not generate")
        return self

    @property
    def model_options(self):
        return ModelOptions(**{k: getattr(self, k) for k in ModelOptions.model_fields})


class EvalOptions(Options):
    """``seqgen eval``: the loss of a model on a corpus (and the scores of a tagger or classifier
    on a labelled one)."""

    model: str = Field(description="checkpoint path or shipped model name")
    corpus: Path = Field(description="corpus to score: a file or a directory")
    batch_size: int = Field(32, ge=1, le=100_000, description="streams or items per batch while scoring")
    seq_length: int = Field(64, ge=1, le=1_000_000, description="steps per window while scoring")


class PredictOptions(Options):
    """``seqgen predict``: label the items of a file with a tag or classify model."""

    model: str = Field(description="checkpoint path of a tag or classify model")
    file: Path = Field(description="items to label, in the format of the model's tokenizer (labels optional)")
    output: Path | None = Field(None, description="write the labelled items here (default: standard output)")
    format: Literal["json", "conll", "tsv"] = Field(
        "tsv", description="json: one JSON object per item and line; conll: token, [gold,] label per line (tag); "
                           "tsv: tag: tokens<TAB>labels per item, classify: label<TAB>text")
    batch_size: int = Field(32, ge=1, le=100_000, description="items labelled at once (memory, not result)")
    force: bool = Field(False, description="overwrite an existing output file")
