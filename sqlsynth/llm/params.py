"""modelParameters: validated once per distinct value, merged over the endpoint's defaults."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ModelParametersError

# Keys that only distinguish cache entries (distinct samples); never sent to a server.
CACHE_ONLY = ("sample_id",)


class ModelParameters(BaseModel):
    """The generation settings users tune. Unknown keys pass through to the server as they are."""

    model_config = ConfigDict(extra="allow", strict=True)

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    seed: int | None = None
    sample_id: int | str | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    do_sample: bool | None = None
    num_beams: int | None = Field(None, ge=1)
    num_return_sequences: int | None = Field(None, ge=1)


def validate_parameters(data: Any) -> dict[str, Any]:
    """The non-null parameters as a plain dict; ModelParametersError naming the bad key."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelParametersError(f"modelParameters must be a struct/map, got {type(data).__name__}",
                                   hint="write modelParameters := {'temperature': 0.7, 'max_tokens': 512}")
    try:
        model = ModelParameters.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ModelParametersError(f"modelParameters.{key}: {first['msg']} (got {first.get('input')!r})",
                                   hint="e.g. {'temperature': 0.7, 'max_tokens': 512, 'seed': 1}") from None
    return {k: v for k, v in model.model_dump().items() if v is not None}


@lru_cache(maxsize=1024)
def parse_parameters_json(text: str | None) -> tuple[tuple[str, Any], ...]:
    """modelParameters as DuckDB's to_json wrote it → validated, hashable (cached per distinct text)."""
    if text is None:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        raise ModelParametersError(f"modelParameters is not a struct: {text[:60]!r}") from None
    return tuple(sorted(validate_parameters(data).items(), key=lambda kv: kv[0]))


def merge(defaults: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    """Call parameters override the endpoint's `parameters:` defaults."""
    return {**validate_parameters(defaults), **call}


def openai_arguments(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(keyword arguments of chat.completions.create, extra_body) for OpenAI-compatible servers."""
    known = {"temperature", "max_tokens", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty"}
    local_only = {"do_sample", "num_beams", "num_return_sequences", *CACHE_ONLY}
    kwargs, extra = {}, {}
    for key, value in parameters.items():
        if key == "max_new_tokens":
            kwargs.setdefault("max_tokens", value)
        elif key in known:
            kwargs[key] = value
        elif key not in local_only:
            extra[key] = value  # top_k, repetition_penalty, ...: vLLM/Ollama extensions
    return kwargs, extra
