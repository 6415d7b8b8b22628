"""The small shared vocabulary of the llm package: one request, one result, one backend protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LLMRequest:
    """One chat completion to make. ``response_schema`` is a JSON schema (object) or None."""

    messages: tuple[dict[str, str], ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    response_schema: dict[str, Any] | None = None


@dataclass
class LLMResult:
    """What came back. ``text`` is None exactly when ``error`` is set. ``finish_reason``: why generation
    stopped — "stop" (natural end or a stop sequence), "length" (hit max_tokens), "error" (no answer)."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    attempts: int = 1
    finish_reason: str | None = None


class Backend(Protocol):
    """A provider behind an endpoint. Implementations: openai (HTTP), transformers (in-process)."""

    def identity(self) -> dict[str, Any]:
        """What makes two endpoints give the same answers (provider, base_url, model): the cache key part."""
        ...

    def generate_many(self, requests: list[LLMRequest]) -> list[LLMResult]:
        """Answer every request (concurrently or batched, as the backend sees fit), in order."""
        ...
