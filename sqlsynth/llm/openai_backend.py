"""provider: openai — any OpenAI-compatible chat-completions server (OpenAI, Databricks serving, vLLM,
Ollama, llama.cpp).

Transport: transport.JSONTransport (one aiohttp session) on the shared background loop. The openai
client measured 0.68 ms CPU/request even through its generic ``post`` (1.15 ms for
``chat.completions.create``) against 0.19 ms for raw aiohttp; its auth header, timeout and error
classification are reproduced here (401/403/404 fatal for the endpoint, 400 fatal or a rejected
response_format, 409/429/5xx retried with Retry-After).

Retries are ours (exponential backoff with jitter, honouring
Retry-After) so that 429/5xx/timeouts/connection errors *and* unusable 200 answers (non-JSON body,
truncated body, empty choice list) all follow one policy and are counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from ..config import EndpointConfig
from ..console import console
from . import aio
from .concurrency import AdaptiveLimit
from .errors import NOT_SENT
from .params import openai_arguments
from .transport import JSONTransport, StatusError, TimedOut, Unreachable, Unreadable
from .types import LLMRequest, LLMResult

OPENAI_URL = "https://api.openai.com/v1"
SCHEMA_MARKER = "matches this JSON schema:"  # the stub server looks for it (prompt-and-parse mode)


class _Retryable(Exception):
    """A failure worth another attempt; ``delay`` is the server's Retry-After when it sent one."""

    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class _Fatal(Exception):
    """A failure no retry fixes (401/403/404, a 400 that is not about response_format). ``endpoint_wide``:
    every other request would fail the same way (bad key, no access, wrong model or URL)."""

    def __init__(self, message: str, endpoint_wide: bool = False):
        super().__init__(message)
        self.endpoint_wide = endpoint_wide


ENDPOINT_WIDE = (401, 403, 404)  # the circuit breaker trips on these


class _FormatRejected(Exception):
    """The server refused ``response_format``: switch this endpoint to prompt-and-parse."""


class RateLimiter:
    """requests_per_minute / tokens_per_minute as continuously refilled buckets (async, one loop)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self._next_request = 0.0
        self._tokens = tokens_per_minute or 0.0
        self._refilled = time.monotonic()

    async def acquire(self, estimated_tokens: int) -> None:
        if self.rpm:
            now = time.monotonic()
            start = max(now, self._next_request)
            self._next_request = start + 60.0 / self.rpm
            if start > now:
                await asyncio.sleep(start - now)
        if self.tpm:
            need = min(float(estimated_tokens), self.tpm)
            while True:
                now = time.monotonic()
                self._tokens = min(self.tpm, self._tokens + (now - self._refilled) * self.tpm / 60.0)
                self._refilled = now
                if self._tokens >= need:
                    self._tokens -= need
                    return
                await asyncio.sleep((need - self._tokens) * 60.0 / self.tpm)


def estimate_tokens(request: LLMRequest) -> int:
    """~4 characters per token for the prompt, plus the answer budget."""
    chars = sum(len(str(m.get("content", ""))) for m in request.messages)
    budget = request.parameters.get("max_tokens") or request.parameters.get("max_new_tokens") or 256
    return chars // 4 + int(budget)


def strict_compatible(schema: Any) -> bool:
    """OpenAI's strict mode (guaranteed schema) needs every object closed and every property required."""
    if isinstance(schema, list):
        return all(strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if schema.get("type") == "object" or props is not None:
        props = props or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
            return False
    children = [*(props or {}).values(), *schema.get("$defs", {}).values(),
                *(schema[k] for k in ("items", "anyOf") if k in schema)]
    return all(strict_compatible(c) for c in children)


def schema_instruction(schema: dict[str, Any]) -> str:
    return ("Respond with only a JSON object (no prose, no code fence) that "
            f"{SCHEMA_MARKER}\n{json.dumps(schema)}")


class OpenAIBackend:
    """One endpoint: one client, one semaphore (max_concurrency), one rate limiter, per process."""

    def __init__(self, endpoint: EndpointConfig, name: str, api_key: str):
        self.endpoint, self.name = endpoint, name
        self.base_url = (endpoint.base_url or OPENAI_URL).rstrip("/")
        self._api_key = api_key
        # None until the first answer to a request with a schema says (one probe; the others wait).
        self.json_schema_supported: bool | None = None
        self._format_probe: asyncio.Future | None = None
        self.fatal: str | None = None  # circuit breaker (401/403/404): no further request this run
        self._throttle_warned = False
        self.retry_waiting = 0  # requests sleeping before another attempt (shown in the progress line)
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.concurrency: AdaptiveLimit | None = None  # AIMD within max_concurrency (concurrency.py)
        self._limiter = RateLimiter(endpoint.requests_per_minute, endpoint.tokens_per_minute)

    def identity(self) -> dict[str, Any]:
        return {"provider": "openai", "base_url": self.base_url, "model": self.endpoint.model}

    # -- public API
    def generate_many(self, requests: list[LLMRequest]) -> list[LLMResult]:
        async def all_of() -> list[LLMResult]:
            return list(await asyncio.gather(*(self.acomplete(r) for r in requests)))
        return aio.submit(all_of()).result()

    async def acomplete(self, request: LLMRequest) -> LLMResult:
        """Answer one request, retrying transient failures; never raises (errors are in the result)."""
        started, attempt, last_error = time.perf_counter(), 0, ""
        while True:
            attempt += 1
            if self.fatal:
                return self._failed(self._stopped(), attempt - 1, started)
            use_format = request.response_schema is not None and await self._format_usable()
            try:
                result = await self._attempt(request, use_format)
                self._learn_format(use_format, True)
                result.attempts, result.latency_s = attempt, time.perf_counter() - started
                return result
            except _FormatRejected:
                self._learn_format(use_format, False)
                attempt -= 1  # not the request's fault; ask again in prompt-and-parse mode
                continue
            except _Fatal as exc:
                self._learn_format(use_format, None)
                if exc.endpoint_wide:
                    self._trip(str(exc))
                return self._failed(str(exc), attempt, started)
            except _Retryable as exc:
                self._learn_format(use_format, None)
                last_error = str(exc)
                if attempt > self.endpoint.max_retries:
                    return self._failed(f"{last_error} (after {attempt} attempts)", attempt, started)
                self.retry_waiting += 1
                try:
                    await asyncio.sleep(self.retry_delay(attempt, exc.delay))
                finally:
                    self.retry_waiting -= 1

    def status(self) -> str:
        """For the progress line: the adaptive in-flight limit when below max_concurrency, and the
        requests waiting to retry (a throttling or failing endpoint is visible, not silent)."""
        parts = []
        limit = self.concurrency
        if limit is not None and int(limit.limit) < limit.maximum:
            parts.append(f"limit {int(limit.limit)}/{limit.maximum} in flight")
        if self.retry_waiting:
            parts.append(f"{self.retry_waiting} waiting to retry")
        return ", ".join(parts)

    # -- what this endpoint taught us during the run
    async def _format_usable(self) -> bool:
        """Whether to send response_format. While unknown, one request probes and the others wait, so
        a server without json_schema support answers one 400 per run, not one per row in flight."""
        while self.json_schema_supported is None:
            if self._format_probe is None:
                self._format_probe = asyncio.get_running_loop().create_future()
                return True
            await asyncio.shield(self._format_probe)
        return self.json_schema_supported

    def _learn_format(self, used: bool, supported: bool | None) -> None:
        """End a probe: supported True/False is learned; None (another failure) lets the next one probe."""
        probe = self._format_probe
        if not used or self.json_schema_supported is not None or probe is None:
            return
        self.json_schema_supported = supported
        self._format_probe = None
        if not probe.done():
            probe.set_result(None)

    def _trip(self, message: str) -> None:
        if self.fatal is None:
            self.fatal = message
            console.print(f"[red]endpoint '{self.name}' stopped for this run[/red]: {message}; "
                          "no further requests are sent to it", markup=True)

    # -- one HTTP request
    def request_body(self, request: LLMRequest, use_format: bool) -> dict[str, Any]:
        """The chat-completions body: the canonical parameters as the API spells them, and the
        response format as json_schema or, when not used, as an instruction (prompt-and-parse)."""
        kwargs, extra = openai_arguments(request.parameters)
        messages = list(request.messages)
        schema = request.response_schema
        if use_format:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "response", "schema": schema, "strict": strict_compatible(schema)}}
        elif schema is not None:
            messages = [{"role": "system", "content": schema_instruction(schema)}, *messages]
        return {"model": self.endpoint.model, "messages": messages, **kwargs, **extra}

    def transport(self) -> JSONTransport:
        """The endpoint's HTTP transport (call on the shared loop): the batch API uses it too."""
        return self._ensure_client()

    async def _attempt(self, request: LLMRequest, use_format: bool) -> LLMResult:
        client = self._ensure_client()
        body = self.request_body(request, use_format)
        limit = self.concurrency
        ticket = await limit.acquire()  # type: ignore[union-attr]
        try:
            if self.fatal:  # the breaker tripped while this row waited for a slot
                raise _Fatal(self._stopped())
            if self._limiter.rpm or self._limiter.tpm:  # most endpoints have neither: no coroutine per request
                await self._limiter.acquire(estimate_tokens(request))
            sent = time.perf_counter()
            response = await self._post(client, body, use_format, ticket)
            limit.succeeded(time.perf_counter() - sent)  # type: ignore[union-attr]
        finally:
            limit.release()  # type: ignore[union-attr]
        return self.parse_completion(response)

    async def _post(self, client: JSONTransport, body: dict[str, Any], use_format: bool, ticket: int) -> Any:
        """One POST; what happened mapped to retry / fatal / format-rejected."""
        try:
            return await client.post("/chat/completions", body)
        except StatusError as exc:
            raise self._classified(exc, use_format, ticket) from None
        except TimedOut:
            raise _Retryable(f"no answer within timeout_s={self.endpoint.timeout_s}") from None
        except Unreachable as exc:
            raise _Retryable(f"cannot reach {self.base_url}: {self.scrub(str(exc))}") from None
        except Unreadable as exc:  # non-JSON / truncated body
            raise _Retryable(self.scrub(str(exc))) from None

    def _classified(self, exc: StatusError, use_format: bool, ticket: int) -> Exception:
        status, message = exc.status, self.describe(exc)
        if status == 429:
            self._warn_throttled(exc.retry_after)
            paused = None if exc.retry_after is None else min(max(exc.retry_after, 0.0), self.endpoint.retry_max_s)
            self.concurrency.throttled(ticket, paused)  # type: ignore[union-attr]
            return _Retryable(message, exc.retry_after)
        if status >= 500 or status == 409:
            return _Retryable(message, exc.retry_after)
        if status == 400 and use_format and _about_format(message):
            return _FormatRejected()
        return _Fatal(message, status in ENDPOINT_WIDE)

    def parse_completion(self, response: Any) -> LLMResult:
        """An LLMResult from a chat.completion body; _Retryable when the body is unusable."""
        if not isinstance(response, dict):
            raise _Retryable(f"unreadable response body: {str(response)[:80]!r}")
        choices = response.get("choices")
        if not choices or not isinstance(choices, list):
            raise _Retryable("the server answered with an empty choice list")
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise _Retryable("the server answered with an empty message")
        usage = response.get("usage") or {}
        finish = choices[0].get("finish_reason")
        return LLMResult(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                         completion_tokens=int(usage.get("completion_tokens") or 0),
                         finish_reason=finish if isinstance(finish, str) else None)

    # -- helpers
    def _ensure_client(self) -> JSONTransport:
        current = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not current:
            self._client = JSONTransport(self.base_url, self._api_key, self.endpoint.timeout_s,
                                         self.endpoint.max_concurrency)
            self._client_loop = current
            self.concurrency = AdaptiveLimit(self.endpoint.max_concurrency)
            aio.on_shutdown(self._client.close)
        return self._client

    def _stopped(self) -> str:
        return f"{NOT_SENT} endpoint '{self.name}' was stopped by an earlier error ({self.fatal})"

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server knows best, within retry_max_s (a 100 s Retry-After would look like a hang).
            return min(max(retry_after, 0.0), self.endpoint.retry_max_s)
        base = min(self.endpoint.retry_max_s, self.endpoint.retry_base_s * 2 ** (attempt - 1))
        return base * (0.5 + random.random())  # full jitter keeps 64 retriers from moving in lockstep

    def _warn_throttled(self, asked: float | None) -> None:
        """Once per endpoint per run: which endpoint is rate limiting, and how long rows will wait."""
        if self._throttle_warned:
            return
        self._throttle_warned = True
        cap = self.endpoint.retry_max_s
        wait = "" if asked is None else f", Retry-After {asked:g} s" + (
            f" (waits capped at retry_max_s={cap:g} s)" if asked > cap else "")
        console.print(f"[yellow]endpoint '{self.name}' is throttling[/yellow]: HTTP 429 from "
                      f"{self.base_url}{wait}; retrying", markup=True)

    def describe(self, exc: StatusError) -> str:
        status = exc.status
        text = f"HTTP {status} from {self.base_url}: {exc.message}"
        hints = {401: f" ({self._key_hint()})", 403: " (the key may not have access to this model)",
                 404: f" (check base_url and model '{self.endpoint.model}')"}
        return self.scrub(text + hints.get(status, ""))

    def _key_hint(self) -> str:
        """What to fix on a 401: the variable the key comes from (never its value)."""
        variable = self.endpoint.api_key_env
        if variable:
            return f"check the key in {variable}, the endpoint's api_key_env"
        return "the endpoint sends no key: add api_key_env: NAME_OF_THE_KEY_VARIABLE to it in project.yml"

    def scrub(self, text: str) -> str:
        """Never let the key (or a credential in base_url) reach a message, a log row or the database:
        the message becomes the row's errorMessage, stored in the model's table."""
        from ..masking import mask

        key = self._api_key
        return mask(text.replace(key, "***") if key and len(key) > 3 else text)

    def _failed(self, message: str, attempts: int, started: float) -> LLMResult:
        return LLMResult(text=None, error=self.scrub(message), attempts=attempts,
                         latency_s=time.perf_counter() - started, finish_reason="error")


def _about_format(message: str) -> bool:
    """A 400 that rejects structured output (OpenAI, vLLM, Ollama word it differently)."""
    lowered = message.lower()
    return any(word in lowered for word in ("response_format", "json_schema", "schema", "format"))
