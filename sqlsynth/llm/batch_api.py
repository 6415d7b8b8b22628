"""Provider batch mode (endpoint option ``batch: true``): a model's uncached requests go to the
provider as one batch (OpenAI's ``/v1/files`` + ``/v1/batches``, served the same way by several
providers and vLLM's batch runner) at about half the token price, within a 24 h window.

Per model (llm/batch_prepass.py computes its requests before its SQL runs): the cache misses are
written as one JSONL file (``custom_id`` = the cache key; above MAX_LINES, several), uploaded, and a
batch is created. Its id and keys are committed to
``sqlsynth.pending_batches`` at once, so a run stopped while the batch runs (Ctrl-C, kill -9)
resumes polling that batch on the next run and never submits the same rows twice. When the batch
completes, its output and error files are read and every line goes through the same validation,
cache and call-log path as a live answer (the call log row names the batch). Answers that fail
responseFormat validation are re-asked in a follow-up batch (``invalid_retries``); failed lines are
row errors (``failOnError`` decides what they do).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..console import console
from . import aio
from .errors import LLMCallError
from .transport import StatusError, TimedOut, Unreachable, Unreadable
from .types import LLMResult

# `owner` is batch.py's _Batch, jobs its _Job, answers its Outcome; batch.py imports this module on
# first use, so importing them back (even for type checking) would be an import circle.

TERMINAL = {"completed", "failed", "expired", "cancelled"}
WINDOW = "24h"
MAX_LINES = 50_000  # OpenAI's limit per batch file (also 200 MB): a bigger model is split into several


class ProviderBatch:
    """Answers one ai_query batch's own requests (``jobs``) through the provider's batch API."""

    def __init__(self, owner: Any):
        self.owner = owner
        self.backend, self.config, self.cache = owner.backend, owner.config, owner.answerer.cache
        self.status = ""

    def answer(self, jobs: list[Any], answers: dict[str, Any]) -> None:
        todo = {job.key: job for job in jobs}
        self.owner.progress.line.endpoint_status = lambda: self.status
        for batch_id, keys in self.cache.pending_batches(self.owner.endpoint, list(todo)).items():
            mine = {key: todo.pop(key) for key in keys if key in todo}
            console.print(f"endpoint '{self.owner.endpoint}': resuming batch {batch_id} "
                          f"({len(mine)} requests submitted by an earlier run)")
            todo.update(self._collect(batch_id, mine, answers))
        while todo:  # the first round, then the re-asks of answers that failed validation
            jobs = list(todo.values())
            parts = [jobs[i:i + MAX_LINES] for i in range(0, len(jobs), MAX_LINES)]
            submitted = [(self._submit(part), part) for part in parts]  # all submitted before any wait
            todo = {}
            for batch_id, part in submitted:
                todo.update(self._collect(batch_id, {job.key: job for job in part}, answers))

    # ----------------------------------------------------------------- submit
    def _submit(self, jobs: list[Any]) -> str:
        use_format = self.backend.json_schema_supported is not False
        lines = [{"custom_id": job.key, "method": "POST", "url": "/v1/chat/completions",
                  "body": self.backend.request_body(job.request, use_format and job.request.response_schema
                                                    is not None)} for job in jobs]
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = self._call("upload the batch file", "upload", "/files", {"purpose": "batch"},
                              "sqlsynth-batch.jsonl", content)
        created = self._call("create the batch", "post", "/batches", {
            "input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": WINDOW,
            "metadata": {"node": str(self.owner.node or "")}})
        batch_id = str(created["id"])
        self.cache.record_batch(batch_id, self.owner.endpoint, self.owner.node, [job.key for job in jobs])
        for job in jobs:
            job.attempts += 1
        console.print(f"endpoint '{self.owner.endpoint}': batch {batch_id} submitted ({len(jobs)} requests); "
                      f"polling every {self.config.batch_poll_s:g} s")
        return batch_id

    # ----------------------------------------------------------------- collect
    def _collect(self, batch_id: str, jobs: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
        """Wait for the batch, settle each of ``jobs`` from its lines; the jobs to re-ask."""
        batch = self._wait(batch_id)
        results = self._results(batch) if batch["status"] == "completed" else {}
        failure = None if batch["status"] == "completed" else f"batch {batch_id} {batch['status']}" + (
            f": {_errors(batch)}" if _errors(batch) else "")
        self.owner.batch_id = batch_id
        again: dict[str, Any] = {}
        for key, job in jobs.items():
            result = results.get(key) or LLMResult(
                text=None, error=failure or f"batch {batch_id} has no answer for this request")
            outcome = self.owner.settle(job, result)
            if outcome is None:
                again[key] = job
            else:
                answers[key] = outcome
                self.owner.progress.advance(1)
        self.owner.flush(force=True)  # answers durable before the batch is forgotten
        self.owner.batch_id = None
        self.cache.forget_batch(batch_id)
        return again

    def _wait(self, batch_id: str) -> dict[str, Any]:
        poll = self.config.batch_poll_s
        while True:
            batch = self._call("look at the batch", "request", "GET", f"/batches/{batch_id}")
            counts = batch.get("request_counts") or {}
            self.status = (f"batch {batch_id} {batch.get('status')}: {counts.get('completed', 0)}"
                           f"/{counts.get('total', '?')} done, {counts.get('failed', 0)} failed")
            if batch.get("status") in TERMINAL:
                return batch
            deadline = time.monotonic() + poll
            while time.monotonic() < deadline:
                self.owner.check_interrupted(f"batch {batch_id} keeps running at the provider; "
                                             "the next run resumes it")
                time.sleep(min(0.2, poll))

    def _results(self, batch: dict[str, Any]) -> dict[str, LLMResult]:
        """custom_id → result, from the output file and the error file."""
        results: dict[str, LLMResult] = {}
        for name in ("output_file_id", "error_file_id"):
            if not batch.get(name):
                continue
            raw = self._call("read the batch results", "get_bytes", f"/files/{batch[name]}/content")
            for line in raw.decode("utf-8", "replace").splitlines():
                if line.strip():
                    custom_id, result = self._line(batch["id"], json.loads(line))
                    results[custom_id] = result
        return results

    def _line(self, batch_id: str, line: dict[str, Any]) -> tuple[str, LLMResult]:
        response = line.get("response") or {}
        status = response.get("status_code")
        if line.get("error") or status != 200:
            error = line.get("error") or (response.get("body") or {}).get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            return line["custom_id"], LLMResult(text=None, error=f"batch {batch_id} line failed"
                                                f"{f' (HTTP {status})' if status else ''}: {message}",
                                                finish_reason="error")
        try:
            return line["custom_id"], self.backend.parse_completion(response.get("body"))
        except Exception as exc:  # noqa: BLE001 - an unusable line is this row's error
            return line["custom_id"], LLMResult(text=None, error=f"batch {batch_id}: {exc}", finish_reason="error")

    # ----------------------------------------------------------------- HTTP
    def _call(self, doing: str, method: str, *args: Any) -> Any:
        """One request through the endpoint's transport, retried like a live call when transient."""
        backend, attempt = self.backend, 0

        async def once() -> Any:
            return await getattr(backend.transport(), method)(*args)
        while True:
            attempt += 1
            try:
                return aio.submit(once()).result()
            except StatusError as exc:
                if exc.status < 500 and exc.status != 429 or attempt > self.config.max_retries:
                    raise LLMCallError(f"endpoint '{self.owner.endpoint}': cannot {doing}: "
                                   f"{backend.describe(exc)}", hint=_hint(exc.status)) from None
                delay = exc.retry_after
            except (TimedOut, Unreachable, Unreadable) as exc:
                if attempt > self.config.max_retries:
                    raise LLMCallError(f"endpoint '{self.owner.endpoint}': cannot {doing} at {backend.base_url}: "
                                   f"{backend.scrub(str(exc) or type(exc).__name__)}") from None
                delay = None
            self.owner.check_interrupted("the next run resumes any batch already submitted")
            time.sleep(backend.retry_delay(attempt, delay))


def _errors(batch: dict[str, Any]) -> str:
    errors = (batch.get("errors") or {}).get("data") or []
    return "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))[:300]


def _hint(status: int) -> str | None:
    if status == 404:
        return "the server has no batch API (/v1/files, /v1/batches): remove `batch: true` from the endpoint"
    return None
