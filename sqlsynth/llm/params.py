"""modelParameters: one vocabulary for every backend.

Every spelling is mapped to one canonical name (OpenAI's) *before* endpoint defaults are merged and the
cache key is hashed, so ``max_new_tokens: 64`` and ``max_tokens: 64`` are the same request and hit the
same cached answer. Types and ranges are validated once per distinct value; each provider declares the
keys it supports and an unknown key is an error with "did you mean" (at compile time when the struct is
a constant, else on the first row).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import did_you_mean
from .errors import ModelParametersError

# Keys that only distinguish cache entries (distinct samples); never sent to a server.
CACHE_ONLY = ("sample_id",)

# Other spellings → the canonical name (transformers' and OpenAI's newer names).
ALIASES = {"max_new_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
           "num_return_sequences": "n"}

_COMMON = {"temperature", "max_tokens", "top_p", "seed", "stop", "n", "sample_id"}
# What each provider accepts. openai: the chat-completions settings plus the sampling extensions vLLM,
# Ollama and llama.cpp servers read from the body; anything else goes inside ``extra_body``.
# do_sample / num_beams are the local model's decoding knobs: an OpenAI server has no such setting,
# so they are accepted and not sent (one modelParameters struct works on both kinds of endpoint).
SUPPORTED = {
    "openai": _COMMON | {"presence_penalty", "frequency_penalty", "top_k", "min_p", "repetition_penalty",
                         "logit_bias", "user", "reasoning_effort", "extra_body", "do_sample", "num_beams"},
    "transformers": _COMMON | {"top_k", "repetition_penalty", "do_sample", "num_beams"},
}
_NOT_ON = {  # a key another provider has, with this provider's way of getting the same effect
    ("transformers", "presence_penalty"): "the local backend has no presence_penalty: use repetition_penalty",
    ("transformers", "frequency_penalty"): "the local backend has no frequency_penalty: use repetition_penalty",
}


class ModelParameters(BaseModel):
    """The canonical generation settings with their types and ranges."""

    model_config = ConfigDict(extra="allow", strict=True)

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    sample_id: int | str | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    do_sample: bool | None = None
    num_beams: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1)
    extra_body: dict[str, Any] | None = None


def canonical(data: dict[str, Any], where: str = "modelParameters") -> dict[str, Any]:
    """The same settings under canonical names; two spellings of one setting must agree."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        name = ALIASES.get(key, key)
        if name == "stop" and isinstance(value, str):
            value = [value]
        if name in out and out[name] != value:
            raise ModelParametersError(f"{where}: {key!r} is another spelling of {name!r}, with a different "
                                       "value", hint=f"keep only {name!r}")
        out[name] = value
    return out


def validate_parameters(data: Any, where: str = "modelParameters") -> dict[str, Any]:
    """The non-null parameters, canonical and type-checked; ModelParametersError naming the bad key."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelParametersError(f"{where} must be a struct/map, got {type(data).__name__}",
                                   hint="write modelParameters := {'temperature': 0.7, 'max_tokens': 512}")
    try:
        model = ModelParameters.model_validate(canonical(data, where))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ModelParametersError(f"{where}.{key}: {first['msg']} (got {first.get('input')!r})",
                                   hint="e.g. {'temperature': 0.7, 'max_tokens': 512, 'seed': 1}") from None
    return {k: v for k, v in model.model_dump().items() if v is not None}


def check_supported(parameters: dict[str, Any], provider: str, endpoint: str,
                    where: str = "modelParameters") -> None:
    """Every (canonical) key must be one the endpoint's provider understands."""
    supported = SUPPORTED.get(provider)
    if supported is None:  # a backend registered by an embedding app: it checks its own options
        return
    for key in parameters:
        if key in supported:
            continue
        hint = (_NOT_ON.get((provider, key)) or did_you_mean(key, sorted(supported | set(ALIASES)))
                or f"endpoint '{endpoint}' ({provider}) accepts: {', '.join(sorted(supported))}"
                + ("; server-specific settings go inside 'extra_body'" if provider == "openai" else ""))
        raise ModelParametersError(f"{where}: unknown parameter {key!r} for endpoint '{endpoint}' "
                                   f"(provider {provider})", hint=hint)


def effective(defaults: dict[str, Any] | None, call: dict[str, Any], provider: str | None,
              endpoint: str) -> dict[str, Any]:
    """Endpoint defaults (canonical) overridden by the call's (canonical) parameters, checked once."""
    return merge(endpoint_defaults(defaults), call, provider, endpoint)


def endpoint_defaults(defaults: dict[str, Any] | None) -> dict[str, Any]:
    """An endpoint's `parameters:`, canonical and validated (once per distinct value); do not mutate."""
    return _defaults(json.dumps(defaults or {}, sort_keys=True))


def merge(defaults: dict[str, Any], call: dict[str, Any], provider: str | None, endpoint: str) -> dict[str, Any]:
    """effective() for defaults already canonical (endpoint_defaults): per row, no re-validation."""
    merged = {**defaults, **call}
    if provider is not None:
        _check_cached(tuple(sorted(merged)), provider, endpoint)
    return merged


@lru_cache(maxsize=256)
def _defaults(text: str) -> dict[str, Any]:
    return validate_parameters(json.loads(text), where="endpoint parameters")


@lru_cache(maxsize=1024)
def _check_cached(keys: tuple[str, ...], provider: str, endpoint: str) -> None:
    check_supported(dict.fromkeys(keys), provider, endpoint)


def legacy_parameters(defaults: dict[str, Any] | None, text: str | None) -> dict[str, Any] | None:
    """The parameters as sqlsynth hashed them before this vocabulary (spellings kept, no merge of two
    spellings), when that differs from the canonical form — so answers cached under the old key are
    found and moved to the new one instead of being paid for again. None when nothing differs.
    Cached per (defaults, text): the result is shared, do not mutate it."""
    return _legacy(json.dumps(defaults or {}, sort_keys=True), text)


@lru_cache(maxsize=1024)
def _legacy(defaults_text: str, text: str | None) -> dict[str, Any] | None:
    defaults = json.loads(defaults_text)
    call = json.loads(text) if text else {}
    raw = {**(defaults or {}), **(call if isinstance(call, dict) else {})}
    raw = {k: v for k, v in raw.items() if v is not None}
    if not any(k in ALIASES or (k == "stop" and isinstance(v, str)) for k, v in raw.items()):
        return None
    return raw


@lru_cache(maxsize=1024)
def parse_parameters_json(text: str | None) -> tuple[tuple[str, Any], ...]:
    """modelParameters as DuckDB's to_json wrote it → validated, canonical, hashable (cached per text)."""
    if text is None:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        raise ModelParametersError(f"modelParameters is not a struct: {text[:60]!r}") from None
    return tuple(sorted(validate_parameters(data).items(), key=lambda kv: kv[0]))


_OPENAI_KNOWN = frozenset({"temperature", "max_tokens", "top_p", "seed", "stop", "presence_penalty",
                           "frequency_penalty", "logit_bias", "user", "reasoning_effort"})
_OPENAI_NOT_SENT = frozenset({"do_sample", "num_beams", "n", *CACHE_ONLY})  # one answer per row; local-only knobs


def openai_arguments(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(keyword arguments of chat.completions.create, extra_body) for OpenAI-compatible servers."""
    known, not_sent = _OPENAI_KNOWN, _OPENAI_NOT_SENT
    kwargs, extra = {}, {}
    for key, value in canonical(parameters).items():
        if key in known:
            kwargs[key] = value
        elif key == "extra_body":
            extra.update(value)
        elif key not in not_sent:
            extra[key] = value  # top_k, min_p, repetition_penalty: vLLM/Ollama extensions
    return kwargs, extra
