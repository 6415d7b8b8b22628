"""A real local HTTP server speaking the OpenAI chat-completions API, for tests and benchmarks.

Deterministic answers (``reply: <last user message>``, or a JSON instance of the requested JSON
schema), configurable latency and fault injection (429/500/malformed/truncated/empty choices/hang/
fixed 400/401/404). Bound to 127.0.0.1 only. Runs in a background thread (tests) or as a separate
process (benchmarks: ``python -m sqlsynth.testing.openai_server --latency 0.2``, which prints its URL).

It is a minimal asyncio HTTP/1.1 server on purpose: it must stay cheap on a 2-core machine so a
benchmark measures the client, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_MARKER = "matches this JSON schema:"


@dataclass
class ServerConfig:
    latency_s: float = 0.0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_malformed: float = 0.0        # 200 with a body that is not JSON
    rate_truncated: float = 0.0        # 200 with a JSON body cut in half
    rate_empty_choices: float = 0.0    # 200 with "choices": []
    rate_hang: float = 0.0             # never answers (the client must time out)
    rate_invalid_answer: float = 0.0   # 200, but the content does not match the schema
    always_status: int | None = None   # answer every chat request with this status (400/401/404...)
    retry_after_s: float | None = None  # Retry-After header sent with 429
    reject_response_format: bool = False  # 400 for response_format json_schema (old servers)
    api_key: str | None = None         # when set, other keys get 401
    rate_limit: float = 0.0            # requests/s allowed (token bucket, 1 s of burst); above it: 429
    cut_at_max_tokens: bool = False    # plain answers longer than max_tokens words end there ("length")
    batch_latency_s: float = 0.0       # a batch is "in_progress" this long after it is created
    batch_error_every: int = 0         # every Nth line of a batch fails (error file); 0 = none
    seed: int = 0


@dataclass
class ServerStats:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    prompts: Counter = field(default_factory=Counter)  # last user message → times answered 200 OK
    batches: int = 0            # batches created
    batch_lines: int = 0        # requests submitted in batches
    batch_polls: int = 0        # GET /batches/{id}
    in_flight: int = 0          # chat requests being answered now
    max_in_flight: int = 0      # the most at once: what a client really keeps in flight
    busy_s: float = 0.0         # time with at least one chat request in flight
    _busy_since: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "statuses": dict(self.statuses), "faults": dict(self.faults),
                "prompts": dict(self.prompts), "batches": self.batches, "batch_lines": self.batch_lines,
                "batch_polls": self.batch_polls, "max_in_flight": self.max_in_flight,
                "busy_s": round(self.busy_s, 3)}

    def enter(self) -> None:
        if self.in_flight == 0:
            self._busy_since = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.busy_s += time.monotonic() - self._busy_since


# --------------------------------------------------------------------------- answers

def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def instance_of(schema: dict[str, Any], seed: str, name: str = "value") -> Any:
    """A deterministic value that validates against (the common subset of) a JSON schema."""
    from sqlsynth.llm.schema import example_value

    return example_value(schema, seed, name)


def _schema_from_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, str) and SCHEMA_MARKER in content:
            rest = content.split(SCHEMA_MARKER, 1)[1].lstrip()
            try:
                return json.JSONDecoder().raw_decode(rest)[0]
            except ValueError:
                return None
    return None


def answer_for(body: dict[str, Any], invalid: bool = False) -> str:
    """The deterministic answer text for a chat request."""
    messages = body.get("messages") or []
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    key = _digest(json.dumps([messages, body.get("seed"), body.get("temperature")], sort_keys=True))
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    fenced = False
    if schema is None and fmt.get("type") != "json_object":
        schema = _schema_from_prompt(messages)
        fenced = schema is not None
    if schema is None:
        if fmt.get("type") == "json_object":
            return json.dumps({"reply": str(last)})
        return f"reply: {last}"
    if invalid:
        return json.dumps({"unexpected": key})
    text = json.dumps(instance_of(schema, key))
    return f"Here you go:\n```json\n{text}\n```" if fenced else text


def completion_body(body: dict[str, Any], text: str, cut: bool = False) -> dict[str, Any]:
    """A chat.completion; with ``cut`` a plain-text answer longer than max_tokens words is cut there,
    finish_reason "length" (off by default: many tests expect the whole prompt echoed)."""
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    finish, limit = "stop", body.get("max_tokens") or body.get("max_completion_tokens")
    if cut and isinstance(limit, int) and not body.get("response_format") and len(text.split()) > limit:
        text, finish = " ".join(text.split()[:limit]), "length"
    out_words = len(text.split())
    return {
        "id": "chatcmpl-" + _digest(text), "object": "chat.completion", "created": 0,
        "model": body.get("model", "stub"),
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": out_words,
                  "total_tokens": prompt_words + out_words},
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": status}}


# --------------------------------------------------------------------------- server

class TokenBucket:
    """``rate`` requests per second on average, at most ``rate`` (one second's worth) at once."""

    def __init__(self, rate: float):
        self.rate, self.tokens = rate, rate
        self.refilled = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_s(self) -> float:
        """Until the next request would be allowed (sent as Retry-After)."""
        return max(0.0, (1 - self.tokens) / self.rate)


class OpenAIServer:
    """``with OpenAIServer(ServerConfig(latency_s=0.05)) as server: server.url``"""

    def __init__(self, config: ServerConfig | None = None, port: int = 0):
        self.config = config or ServerConfig()
        self.stats = ServerStats()
        self._port = port
        self._rng = random.Random(self.config.seed)
        self._bucket = TokenBucket(self.config.rate_limit) if self.config.rate_limit else None
        self.batch_api = BatchAPI(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # -- lifecycle
    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._run_thread, name="openai-stub", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self._port, backlog=1024)
        self._port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self._listen()
        print(self.url, flush=True)
        async with self._server:
            await self._server.serve_forever()

    # -- HTTP
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload, extra = await self._handle(method, path, headers, body)
                if status == 0:  # hang: hold the connection until the client gives up
                    await asyncio.sleep(3600)
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                head_out = [f"HTTP/1.1 {status} X", "Content-Type: application/json",
                            f"Content-Length: {len(data)}", "Connection: keep-alive"]
                head_out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, ValueError):
            pass
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes
                      ) -> tuple[int, Any, dict[str, str]]:
        if path.endswith("/_stats"):
            return 200, self.stats.as_dict(), {}
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "stub", "object": "model"}]}, {}
        if "/files" in path or "/batches" in path:
            return self.batch_api.handle(method, path, headers, raw)
        if not path.endswith("/chat/completions") or method != "POST":
            return 404, _error_body(404, f"no route {path}"), {}
        self.stats.requests += 1
        self.stats.enter()
        try:
            status, payload, extra = await self._chat(headers, raw)
        finally:
            self.stats.leave()
        self.stats.statuses[status] += 1
        return status, payload, extra

    def _fault(self) -> str | None:
        c = self.config
        roll = self._rng.random()
        for name, rate in (("429", c.rate_429), ("500", c.rate_500), ("malformed", c.rate_malformed),
                           ("truncated", c.rate_truncated), ("empty", c.rate_empty_choices),
                           ("hang", c.rate_hang), ("invalid", c.rate_invalid_answer)):
            if roll < rate:
                self.stats.faults[name] += 1
                return name
            roll -= rate
        return None

    async def _chat(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        c = self.config
        if c.api_key and headers.get("authorization") != f"Bearer {c.api_key}":
            return 401, _error_body(401, "Incorrect API key provided"), {}
        if c.always_status:
            return c.always_status, _error_body(c.always_status, f"injected HTTP {c.always_status}"), {}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error_body(400, "body is not JSON"), {}
        fmt = body.get("response_format") or {}
        if c.reject_response_format and fmt.get("type") == "json_schema":
            return 400, _error_body(400, "response_format json_schema is not supported"), {}
        if self._bucket is not None and not self._bucket.take():
            self.stats.faults["rate_limit"] += 1
            return 429, _error_body(429, "rate limit exceeded"), {"Retry-After": f"{self._bucket.wait_s():.3f}"}
        fault = self._fault()
        if fault == "hang":
            return 0, b"", {}
        if c.latency_s:
            await asyncio.sleep(c.latency_s)
        if fault == "429":
            return 429, _error_body(429, "rate limited"), (
                {"Retry-After": str(c.retry_after_s)} if c.retry_after_s is not None else {})
        if fault == "500":
            return 500, _error_body(500, "injected server error"), {}
        text = answer_for(body, invalid=fault == "invalid")
        out = completion_body(body, text, c.cut_at_max_tokens)
        if fault == "malformed":
            return 200, b"<html>upstream proxy error</html>", {}
        if fault == "truncated":
            return 200, json.dumps(out).encode()[:40], {}
        if fault == "empty":
            out["choices"] = []
            return 200, out, {}
        last = next((m.get("content", "") for m in reversed(body.get("messages") or [])
                     if m.get("role") == "user"), "")
        self.stats.prompts[str(last)] += 1
        return 200, out, {}


class BatchAPI:
    """OpenAI's batch API, enough of it for ai_query's batch mode: files upload (multipart), file
    content, batch create and retrieve. A batch answers every line as the chat endpoint would (no
    latency, no fault injection) once ``batch_latency_s`` has passed; with ``batch_error_every``
    every Nth line goes to the error file instead."""

    def __init__(self, server: OpenAIServer):
        self.server = server
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._created: dict[str, float] = {}

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, Any, dict[str, str]]:
        c = self.server.config
        if c.api_key and headers.get("authorization") != f"Bearer {c.api_key}":
            return 401, _error_body(401, "Incorrect API key provided"), {}
        parts = path.split("?")[0].rstrip("/").split("/")
        tail = parts[parts.index("v1") + 1:] if "v1" in parts else parts[1:]
        if tail == ["files"] and method == "POST":
            return self._upload(headers, raw)
        if len(tail) == 3 and tail[0] == "files" and tail[2] == "content" and method == "GET":
            content = self.files.get(tail[1])
            return (200, content, {}) if content is not None else (404, _error_body(404, "no such file"), {})
        if tail == ["batches"] and method == "POST":
            return self._create(json.loads(raw))
        if len(tail) == 2 and tail[0] == "batches" and method == "GET":
            return self._retrieve(tail[1])
        return 404, _error_body(404, f"no route {path}"), {}

    def _upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        from email.parser import BytesParser
        from email.policy import HTTP

        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode() + raw)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.iter_parts()}
        if fields.get("purpose") != b"batch" or not fields.get("file"):
            return 400, _error_body(400, "expected purpose=batch and a file"), {}
        file_id = "file-" + _digest(str(len(self.files)) + fields["file"][:64].decode("utf-8", "replace"))
        self.files[file_id] = fields["file"]
        return 200, {"id": file_id, "object": "file", "bytes": len(fields["file"]), "purpose": "batch"}, {}

    def _create(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        content = self.files.get(body.get("input_file_id", ""))
        if content is None or body.get("endpoint") != "/v1/chat/completions":
            return 400, _error_body(400, "unknown input_file_id or endpoint"), {}
        lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        batch_id = f"batch_{len(self.batches) + 1:04d}"
        self.batches[batch_id] = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"],
                                  "input_file_id": body["input_file_id"], "status": "in_progress",
                                  "output_file_id": None, "error_file_id": None,
                                  "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
        self._created[batch_id] = time.monotonic()
        self.server.stats.batches += 1
        self.server.stats.batch_lines += len(lines)
        return 200, self.batches[batch_id], {}

    def _retrieve(self, batch_id: str) -> tuple[int, Any, dict[str, str]]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, _error_body(404, f"no batch {batch_id}"), {}
        self.server.stats.batch_polls += 1
        if batch["status"] == "in_progress" and \
                time.monotonic() - self._created[batch_id] >= self.server.config.batch_latency_s:
            self._complete(batch)
        return 200, batch, {}

    def _complete(self, batch: dict[str, Any]) -> None:
        every = self.server.config.batch_error_every
        out, errors = [], []
        for n, line in enumerate(self.files[batch["input_file_id"]].decode().splitlines(), 1):
            request = json.loads(line)
            if every and n % every == 0:
                errors.append({"id": f"req_{n}", "custom_id": request["custom_id"], "response": None,
                               "error": {"code": "server_error", "message": "injected batch line failure"}})
                continue
            body = request["body"]
            answer = completion_body(body, answer_for(body), self.server.config.cut_at_max_tokens)
            out.append({"id": f"req_{n}", "custom_id": request["custom_id"],
                        "response": {"status_code": 200, "request_id": f"r{n}", "body": answer}, "error": None})
        for name, rows in (("output_file_id", out), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{batch['id']}-{name.split('_')[0]}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[name] = file_id
        batch["status"] = "completed"
        batch["request_counts"].update(completed=len(out), failed=len(errors))


@contextmanager
def serve_in_subprocess(config: ServerConfig):
    """Run the server in its own process (its CPU is then not the client's GIL); yields the URL."""
    args = [sys.executable, "-m", "sqlsynth.testing.openai_server"]
    for key, value in asdict(config).items():
        if value not in (None, False, 0, 0.0) or key == "seed":
            args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("stub server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def fetch_stats(url: str) -> dict[str, Any]:
    """Stats of a server started with serve_in_subprocess (GET /v1/_stats)."""
    import urllib.request
    with urllib.request.urlopen(url + "/_stats", timeout=10) as response:
        return json.loads(response.read())


FLAG_HELP = {  # --help text of each ServerConfig field's flag
    "latency_s": "seconds to wait before each answer",
    "rate_429": "fraction of requests answered 429 Too Many Requests",
    "rate_500": "fraction of requests answered 500",
    "rate_malformed": "fraction answered 200 with a body that is not JSON",
    "rate_truncated": "fraction answered 200 with a JSON body cut in half",
    "rate_empty_choices": "fraction answered 200 with \"choices\": []",
    "rate_hang": "fraction never answered (the client must time out)",
    "rate_invalid_answer": "fraction whose content does not match the requested schema",
    "always_status": "answer every chat request with this HTTP status (400, 401, 404...)",
    "retry_after_s": "Retry-After header value sent with 429",
    "reject_response_format": "answer 400 to response_format json_schema (as old servers do)",
    "api_key": "require this bearer key; other keys get 401",
    "seed": "random seed of the fault injection",
    "rate_limit": "requests per second allowed (token bucket, 1 s of burst); requests above it get 429 "
                  "with a Retry-After until the next token; 0 = no limit",
    "cut_at_max_tokens": "cut plain answers longer than max_tokens words there (finish_reason \"length\")",
    "batch_latency_s": "seconds a batch stays in_progress after it is created",
    "batch_error_every": "every Nth line of a batch fails (goes to the error file); 0 = none",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one, printed)")
    for key, value in asdict(ServerConfig()).items():
        flag, text = f"--{key.replace('_', '-')}", FLAG_HELP[key]
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif key in ("always_status", "seed", "batch_error_every"):
            parser.add_argument(flag, type=int, default=value, help=text)
        elif key == "api_key":
            parser.add_argument(flag, default=None, help=text)
        else:
            parser.add_argument(flag, type=float, default=value, help=text)
    return parser


def main(argv: list[str] | None = None) -> None:
    ns = vars(build_parser().parse_args(argv))
    port = ns.pop("port")
    server = OpenAIServer(ServerConfig(**ns), port=port)
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
