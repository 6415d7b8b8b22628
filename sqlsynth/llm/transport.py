"""A lean HTTP transport for OpenAI-compatible JSON endpoints: one aiohttp session per endpoint.

Why not the openai client: per chat request it builds ``FinalRequestOptions``, httpx request models,
an idempotency key (uuid4), platform headers, and then hands the request to aiohttp anyway. On the
local stub that was ~0.7 ms of client CPU per request against ~0.2 ms for aiohttp alone
(bench/RESULTS.md, transport table) — the client, not the endpoint, capped ai_query's throughput.

What it keeps from the client: ``Authorization: Bearer <key>``, the total timeout per request, no
redirects to follow, the provider's ``error.message`` in errors, the ``Retry-After`` header. The
caller (openai_backend.py) decides what is retried; this module only classifies what happened.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aiohttp loads with the first request: a run answered from the cache never needs it
    import aiohttp

_JSON = {"Content-Type": "application/json"}


class StatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, message: str, retry_after: float | None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class Unreachable(Exception):
    """No HTTP answer: connection refused or reset, DNS failure, server hung up."""


class TimedOut(Exception):
    """No complete answer within the endpoint's timeout."""


class Unreadable(Exception):
    """A 2xx answer whose body is not JSON (an HTML proxy page, a body cut short)."""


class JSONTransport:
    """POST JSON, get JSON back. Create and use it on one event loop (the shared background loop)."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, max_connections: int):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", "User-Agent": "sqlsynth"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            # One connection per request in flight, kept alive; no cookie jar, no proxy lookups.
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=self._timeout_s), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def post(self, path: str, body: Any) -> Any:
        """The parsed JSON answer; StatusError / Unreachable / TimedOut / Unreadable otherwise."""
        return await self.request("POST", path, data=json.dumps(body).encode(), headers=_JSON)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raw, status, retry_after = await self._exchange(method, path, kwargs)
        if status >= 400:
            raise StatusError(status, _error_message(raw, status), retry_after)
        try:
            return json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise Unreadable(f"unreadable response body ({type(exc).__name__}: {str(exc)[:80]})") from None

    async def upload(self, path: str, fields: dict[str, str], filename: str, content: bytes) -> Any:
        """A multipart/form-data POST with one file (OpenAI's /files); the parsed JSON answer."""
        import aiohttp

        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", content, filename=filename, content_type="application/jsonl")
        return await self.request("POST", path, data=form)

    async def get_bytes(self, path: str) -> bytes:
        """A GET whose answer is returned as is (a file's content)."""
        raw, status, retry_after = await self._exchange("GET", path, {})
        if status >= 400:
            raise StatusError(status, _error_message(raw, status), retry_after)
        return raw

    async def _exchange(self, method: str, path: str, kwargs: dict[str, Any]) -> tuple[bytes, int, float | None]:
        import aiohttp  # already loaded by _open(): a dictionary lookup

        try:
            async with self._open().request(method, self.base_url + path, allow_redirects=False,
                                            **kwargs) as response:
                raw = await response.read()
                return raw, response.status, _retry_after(response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            raise TimedOut() from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_message(raw: bytes, status: int) -> str:
    """The provider's ``error.message`` (OpenAI's shape, used by vLLM, Ollama...), else the body."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    text = raw[:200].decode("utf-8", "replace").strip()
    return text or f"HTTP {status}"


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the caller falls back to its own backoff
