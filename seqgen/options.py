"""Typed, validated options shared by every front end: the CLI builds them from flags (and
``--config`` TOML files), the service from JSON bodies, sweeps from a search space.

Each option object is validated once, when it is made (``parse``); the library then trusts it.
A bad value raises ``ConfigError`` naming the field (``"temperature: must be > 0"``); front
ends translate the field name into their own words (a flag, a JSON path). ``docs/options.md``
lists every field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
            raise ConfigError(_describe(e, source)) from None

    def replace(self, **changes):
        """A validated copy with some fields changed."""
        return type(self).parse({**self.model_dump(), **changes})


def _describe(error: ValidationError, source: str | None) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(options)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        lines.append(f"{field}: {message}")
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

    @model_validator(mode="after")
    def _n_fits_beam(self):
        if self.beam is not None and self.n > self.beam:
            raise ValueError(f"cannot return n={self.n} samples from a beam of {self.beam}; use beam >= n")
        if self.greedy and self.beam is not None:
            raise ValueError("greedy and beam exclude each other")
        return self
