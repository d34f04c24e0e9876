"""Request bodies: OpenAI's completions request, and the native samples request (SampleOptions as
JSON, with a MIDI primer as base64 bytes instead of a path)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from seqgen.options import MAX_SEED, SampleOptions


class CompletionRequest(BaseModel):
    """POST /v1/completions. Fields of OpenAI's API that seqgen has no use for are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    prompt: str | list[str] = ""
    max_tokens: int | None = Field(16, ge=1)
    temperature: float | None = Field(1.0, ge=0, le=1e6)
    top_p: float | None = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False
    echo: bool = False
    logprobs: int | None = None


class SamplesRequest(SampleOptions):
    """POST /v1/samples: every control of ``seqgen sample``. ``model`` names a served model;
    ``prime_midi`` is a .mid file's bytes in base64 (never a path)."""

    model: str | None = Field(None, description="a served model (GET /v1/models); default: the first")
    prime_midi: str | None = Field(None, description="MIDI models: a .mid file to start from, base64")
    stream: bool = Field(False, description="server-sent events as tokens are drawn")
    format: Literal["auto", "json"] = Field("auto", description="MIDI: auto = audio/midi for one sample, "
                                                                "JSON with base64 for several; json: always JSON")

    def options(self):
        """The SampleOptions of this request (no model path, no primer file)."""
        data = self.model_dump(exclude={"model", "prime_midi", "stream", "format"})
        return SampleOptions.parse(data)
