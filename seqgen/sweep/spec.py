"""The sweep file: base ``TrainOptions`` settings, a search space over them, and how to search.

    samples = 4                      # trials per grid point (random draws)
    scheduler = "asha"               # stop poor trials early; "fifo" runs every trial to the end
    [train]                          # any `seqgen train` setting, as in a --config file
    corpus = "corpora/dinos.txt"
    [train.option]                   # tokenizer options
    lower = true
    [space]                          # any train setting (or option.NAME) -> one distribution
    cell = {grid = ["rnn", "gru"]}
    lr = {loguniform = [0.001, 0.03]}

Validated without Ray: every value a trial can draw is checked through ``TrainOptions`` on top
of the base settings before a trial starts, so a bad range fails in one line, not mid-sweep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seqgen.errors import ConfigError
from seqgen.options import TrainOptions

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")
OWNED = {"output": "each trial writes its checkpoint in its own trial directory; set the sweep's output instead",
         "log": "each trial's evaluations are recorded by the sweep (results.json)"}
MAX_TRIALS = 10_000
MAX_VALUES = 1_000  # values in one grid or choice


def train_settings(table: dict) -> dict:
    """A [train] table (keys with dashes or underscores; an [option] table of tokenizer options)
    -> TrainOptions fields, as ``seqgen train --config`` reads them."""
    settings = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in ("option", "options") and isinstance(value, dict):
            name = "tokenizer_options"
        settings[name] = value
    return settings


def apply(base: dict, point: dict) -> dict:
    """Base settings with one point of the space applied (``option.NAME`` keys go to the
    tokenizer options)."""
    settings = {**base, "tokenizer_options": dict(base.get("tokenizer_options") or {})}
    for key, value in point.items():
        if key.startswith("option."):
            settings["tokenizer_options"][key[len("option."):]] = value
        else:
            settings[key] = value
    return settings


class SweepSpec(BaseModel):
    """A parsed, checked sweep file. ``train`` holds the base settings with paths made absolute
    (trials run in their own directories, possibly on other machines)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="name of the experiment")
    output: Path | None = Field(None, description="sweep directory (default: the sweep file's stem + .sweep, in "
                                                  "the working directory)")
    samples: int = Field(1, ge=1, le=MAX_TRIALS, description="trials drawn per grid point")
    search: Literal["random", "optuna"] = Field("random", description="random draws (and the grid), or Optuna's TPE")
    scheduler: Literal["fifo", "asha"] = Field("fifo", description="asha: stop trials that trail at each rung")
    grace_evals: int = Field(2, ge=1, le=1_000_000, description="ASHA: evaluations before a trial may be stopped")
    reduction_factor: float = Field(3.0, gt=1, le=100, description="ASHA: keep 1/factor of the trials at each rung")
    max_evals: int | None = Field(None, ge=1, le=1_000_000,
                                  description="ASHA: evaluations of a full trial (default: from steps and eval_every)")
    threads: int = Field(1, ge=1, le=1024, description="BLAS threads and Ray CPUs per trial")
    concurrency: int | None = Field(None, ge=1, le=MAX_TRIALS,
                                    description="trials at once (default: as many as the CPUs allow)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the search (which points are drawn)")
    train: dict[str, Any] = Field(default_factory=dict, description="base train settings")
    space: dict[str, dict[str, list]] = Field(default_factory=dict, description="setting -> {distribution = [...]}")

    @classmethod
    def parse(cls, data: dict, source: str):
        """A sweep file's contents -> SweepSpec, or ConfigError: one line naming ``source``."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            item = e.errors()[0]
            where = ".".join(str(p) for p in item["loc"])
            message = "unknown setting" if item["type"] == "extra_forbidden" else item["msg"]
            message = message.removeprefix("Value error, ")
            raise ConfigError(f"{source}: {where + ': ' if where else ''}{message}") from None

    @model_validator(mode="after")
    def _check(self):
        base = train_settings(self.train)
        for key, why in OWNED.items():
            if key in base or key in self.space:
                raise ValueError(f"train.{key}: not a sweep setting ({why})")
        base["output"] = "model.npz"  # replaced per trial
        try:
            options = TrainOptions.model_validate(base)
        except ValidationError as e:
            item = e.errors()[0]
            where = ".".join(str(p) for p in item["loc"])
            raise ValueError(f"train.{where}: {item['msg'].removeprefix('Value error, ')}") from None
        if options.corpus is None:
            raise ValueError("train.corpus: give the corpus to train on")
        if options.valid is None and options.valid_fraction == 0:
            raise ValueError("train.valid_fraction: trials are compared by validation loss; hold some data out "
                             "(valid_fraction > 0) or give a valid corpus")
        for key in ("corpus", "valid"):  # trials run in their own directories
            if base.get(key) is not None:
                base[key] = str(Path(base[key]).absolute())
        del base["output"]
        self.train = base
        for key, dist in self.space.items():
            self.space[key] = _check_dimension(key, dist, base)
        if self.search == "optuna" and any("grid" in d for d in self.space.values()):
            raise ValueError("space: Optuna draws its own points; use choice instead of grid with search = \"optuna\"")
        if self.trials > MAX_TRIALS:
            raise ValueError(f"samples: {self.trials:,} trials; a sweep runs at most {MAX_TRIALS:,}")
        return self

    @property
    def trials(self) -> int:
        """How many trials the sweep runs."""
        return self.samples * math.prod(len(d["grid"]) for d in self.space.values() if "grid" in d)

    @property
    def max_t(self) -> int:
        """Evaluations of a full trial, for ASHA's rungs."""
        if self.max_evals is not None:
            return self.max_evals
        steps = self.train.get("steps")
        every = self.train.get("eval_every", TrainOptions.model_fields["eval_every"].default)
        return math.ceil(steps / every) if steps else 100


def _check_dimension(key: str, dist: dict, base: dict) -> dict:
    """One dimension of the space, its values checked through TrainOptions on the base."""
    where = f"space.{key}"
    name = key[len("option."):] if key.startswith("option.") else key
    if not key.startswith("option.") and name not in TrainOptions.model_fields:
        raise ValueError(f"{where}: unknown setting")
    if key == "tokenizer_options":
        raise ValueError(f"{where}: search over single tokenizer options as option.NAME")
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise ValueError(f"{where}: give exactly one of {', '.join(DISTRIBUTIONS)}, e.g. {{choice = [...]}}")
    [(kind, values)] = dist.items()
    if kind in ("grid", "choice"):
        if not 1 <= len(values) <= MAX_VALUES:
            raise ValueError(f"{where}: {kind} takes 1 to {MAX_VALUES} values")
        if name in ("corpus", "valid"):
            values = [str(Path(v).absolute()) if isinstance(v, str) else v for v in values]
        probes = values
    else:
        if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{where}: {kind} takes [low, high]")
        low, high = values
        if not low < high:
            raise ValueError(f"{where}: {kind} needs low < high")
        if kind == "randint":
            if not all(isinstance(v, int) for v in values):
                raise ValueError(f"{where}: randint takes whole numbers [low, high) ")
            probes = [low, high - 1]
        elif kind == "loguniform":
            if low <= 0:
                raise ValueError(f"{where}: loguniform needs low > 0")
            probes = [low, math.sqrt(low * high), high]  # the middle is not whole: int settings need randint
        else:
            probes = [low, (low + high) / 2 + 1e-3 * (high - low), high]
    for value in probes:
        try:
            TrainOptions.model_validate({**apply(base, {key: value}), "output": "model.npz"})
        except ValidationError as e:
            item = e.errors()[0]
            raise ValueError(f"{where}: {kind} value {value!r}: {item['msg'].removeprefix('Value error, ')}") from None
    return {kind: values}
