"""POST /v1/predict: label items with a served tag or classify model (docs/service.md).

The same labelling as ``seqgen predict`` (``api.predict_items``), run in a worker thread under
the request timeout so the event loop keeps serving the sampling endpoints.
"""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from seqgen import api
from seqgen.service.errors import bad_request, unknown_model

MAX_ITEMS = 256  # items per request; tokens per item and characters per text: --max-tokens, --max-prompt
BATCH_SIZE = 32  # items labelled at once (memory, not result)

router = APIRouter()


class PredictRequest(BaseModel):
    """POST /v1/predict."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a served tag or classify model (GET /v1/models)")
    # Checked by _check_items against the model's task, so an error names the item, not a branch of a union.
    items: list[Any] = Field(
        min_length=1, max_length=MAX_ITEMS, description="tag: a list of tokens per item; classify: a text per item",
        json_schema_extra={"items": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}})


def _check_items(items, task, limits):
    """400 naming ``items[i]`` for an item of the wrong kind or over the limits."""
    for i, item in enumerate(items):
        if task == "tag":
            if not isinstance(item, list):
                raise bad_request("a tag model takes a list of tokens per item", f"items[{i}]")
            if not item:
                raise bad_request("no tokens", f"items[{i}]")
            if len(item) > limits.max_tokens:
                raise bad_request(f"at most {limits.max_tokens} tokens per item here", f"items[{i}]")
            for j, token in enumerate(item):
                if not isinstance(token, str):
                    raise bad_request("a token is a string", f"items[{i}][{j}]")
                if len(token) > limits.max_prompt:
                    raise bad_request(f"at most {limits.max_prompt} characters per token here", f"items[{i}][{j}]")
        else:
            if not isinstance(item, str):
                raise bad_request("a classify model takes a text (a string) per item", f"items[{i}]")
            if len(item) > limits.max_prompt:
                raise bad_request(f"at most {limits.max_prompt} characters per text here", f"items[{i}]")


@router.post("/v1/predict")
async def predict(body: PredictRequest, request: Request):
    """Labels per token (tag) or per item (classify), with their probabilities, in order."""
    state = request.app.state
    s = state.served.get(body.model)
    if s is None:
        raise unknown_model(body.model, list(state.served))
    task = s.ckpt.model.config.task
    if task == "lm":
        raise bad_request(f"{s.name} is a language model: it generates text, it has no labels (use POST "
                          "/v1/completions or /v1/samples)", "model")
    _check_items(body.items, task, state.limits)
    result = await asyncio.wait_for(asyncio.to_thread(api.predict_items, s.ckpt, body.items, BATCH_SIZE),
                                    timeout=state.limits.request_timeout)
    return {"model": s.name, "task": task, "items": [api.prediction_record(p, task) for p in result.items]}
