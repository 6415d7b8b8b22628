"""Generation settings of the local backend: ``modelParameters`` validated into GenerationOptions.

The engine hands the backend each request's *effective* parameters: endpoint defaults already merged
once, every spelling already canonical (sqlsynth/llm/params.py: max_tokens, n, ...), unknown keys already
refused at compile time against ``params.SUPPORTED["transformers"]`` (which must name exactly the
fields below: tests/test_params.py). Here they only become the decoding settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...errors import did_you_mean
from ..bundled import LocalModelError
from ..params import ALIASES, SUPPORTED

DEFAULT_MAX_NEW_TOKENS = 256


class InvalidParametersError(LocalModelError):
    """modelParameters / endpoint parameters that the local backend does not understand."""



class GenerationOptions(BaseModel):
    """The generation settings a request may carry (``modelParameters``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_new_tokens: int = Field(DEFAULT_MAX_NEW_TOKENS, ge=1, alias="max_tokens")
    temperature: float | None = Field(None, ge=0)
    do_sample: bool | None = None
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = no top-k filter")
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.0, gt=0)
    num_return_sequences: int = Field(1, ge=1, alias="n")
    seed: int | None = None
    stop: tuple[str, ...] = Field((), description="plain text ends before the first of these strings")
    sample_id: int | str | None = Field(None, description="cache key only: distinct samples; ignored here")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def sampling(self) -> bool:
        """do_sample when given; else sample exactly when temperature > 0 (OpenAI's convention)."""
        if self.do_sample is not None:
            return self.do_sample and self.temperature != 0
        return bool(self.temperature)

    @model_validator(mode="after")
    def _consistent(self) -> GenerationOptions:
        n, beams = self.num_return_sequences, self.num_beams
        if n > 1 and beams == 1 and not self.sampling:
            raise ValueError(f"num_return_sequences={n} with greedy decoding gives {n} identical answers: "
                             "set temperature > 0 (or do_sample: true), or num_beams >= n")
        if beams > 1 and n > beams:
            raise ValueError(f"num_return_sequences={n} must be <= num_beams={beams}")
        return self

    def group_key(self) -> tuple:
        """Requests that can share one generate() call: everything but the seed."""
        return tuple(v for k, v in self.model_dump().items() if k not in ("seed", "sample_id")) + (self.sampling,)


_UNSUPPORTED = {  # OpenAI settings with a local counterpart
    "presence_penalty": "the local backend has no presence_penalty: use repetition_penalty (e.g. 1.2)",
    "frequency_penalty": "the local backend has no frequency_penalty: use repetition_penalty (e.g. 1.2)",
}


def supported_parameters() -> frozenset[str]:
    """The canonical parameter names GenerationOptions reads (a field's alias is its canonical name)."""
    return frozenset(field.alias or name for name, field in GenerationOptions.model_fields.items())


def canonical_parameters(parameters: dict[str, Any] | None, where: str = "modelParameters") -> dict[str, Any]:
    """Parameters under the one vocabulary of params.py (max_new_tokens → max_tokens, ...)."""
    canonical: dict[str, Any] = {}
    for key, value in (parameters or {}).items():
        if value is None:
            continue
        name = ALIASES.get(key, key)
        if name in canonical and canonical[name] != value:
            raise InvalidParametersError(f"{where}: {key!r} and another spelling of {name!r} have "
                                         "different values", hint=f"keep only {name!r}")
        canonical[name] = value
    return canonical


def parse_options(parameters: dict[str, Any] | None, where: str = "modelParameters") -> GenerationOptions:
    """Validate generation settings, with a message naming the bad key and what it accepts."""
    try:
        return GenerationOptions.model_validate(canonical_parameters(parameters, where))
    except ValidationError as exc:
        raise _options_error(exc, where) from None


def _options_error(exc: ValidationError, where: str) -> InvalidParametersError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "parameters"
    known = sorted(SUPPORTED["transformers"] | set(ALIASES))
    if first["type"] == "extra_forbidden":
        hint = (_UNSUPPORTED.get(key) or did_you_mean(key, known)
                or f"the local backend accepts: {', '.join(known)}")
        return InvalidParametersError(f"{where}: unknown generation parameter {key!r}", hint=hint)
    value = first.get("input")
    return InvalidParametersError(f"{where}: {key}={value!r} is invalid: {first['msg']}",
                                  hint=f"the local backend accepts: {', '.join(known)}")
