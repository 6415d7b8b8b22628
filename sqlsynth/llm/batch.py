"""One ai_query batch (up to 2,048 rows from DuckDB): cache lookup, in-flight de-duplication, concurrent
calls, validation with bounded re-asks, cache commits as rows complete, usage and progress.

A request identical to one already in flight anywhere in the process (another row, another DuckDB
thread, another query) waits for that one instead of being sent again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..config import EndpointConfig, ProjectConfig
from ..console import console
from . import aio, endpoints, plan
from .cache import Cache, CacheRow, CallRow, KeyMaker
from .errors import NOT_SENT, BudgetError, LLMError
from .params import CACHE_ONLY, endpoint_defaults, legacy_parameters, merge, parse_parameters_json
from .schema import ResponseFormat, example_value, parse_response_format
from .types import LLMRequest, LLMResult
from .usage import BatchProgress, Counters, calls_made, cost_of, record

# Answers are committed twice a second: each commit costs ~15 ms of CPU whatever its size (0.3 ms/row
# in 64-row commits, 0.08 ms/row in 320-row ones, measured), and a kill -9 loses at most the last
# half second of answers.
FLUSH_EVERY_S = 0.5
# The DuckDB thread looks at the completions this often (and notices an interrupt): the loop never
# waits for it, so the pause costs no throughput, only this much delay before an answer is settled.
DRAIN_PAUSE_S = 0.05
_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Outcome:
    value: str | None          # validated JSON text (responseFormat) or the answer text
    error: str | None = None
    finish_reason: str | None = None  # stop / length / error (None: not known, e.g. an old cache row)


@dataclass
class _Job:
    key: str
    request: LLMRequest
    messages: list[dict[str, str]]
    parameters: dict[str, Any]
    invalid_left: int
    attempts: int = 0
    legacy_key: str | None = None  # the key this request had before parameter spellings were unified


class _InFlight(cf.Future):
    """The answer to a request one model sent and others wait for; ``node`` is the model that pays."""

    def __init__(self, node: str | None):
        super().__init__()
        self.node = node


_inflight_lock = threading.Lock()
_inflight: dict[str, _InFlight] = {}
_cancel_epoch = [0]


@dataclass
class Prepared:
    """What a model's batch pre-pass settled (llm/batch_prepass.py): the keys its provider batch answered
    (now cached, so not counted as cache hits) and the requests that failed, which the model's SQL gets
    as errors instead of sending them again in this run."""

    answered: set[str] = field(default_factory=set)
    errors: dict[str, Outcome] = field(default_factory=dict)


_prepared: dict[str, Prepared] = {}  # node → its pre-pass's outcomes, while the node builds


def prepared(node: str) -> Prepared:
    with _inflight_lock:
        return _prepared.setdefault(node, Prepared())


def forget_prepared(node: str) -> None:
    with _inflight_lock:
        _prepared.pop(node, None)


def cancel_all() -> None:
    """Stop the ai_query batches running now: their statements fail with 'interrupted', no new request
    is sent, answers already received stay cached. Batches started later are not affected. The engine
    calls it on Ctrl-C (before it waits for its worker threads)."""
    _cancel_epoch[0] += 1


# Ctrl-C ends the main thread, and the interpreter then joins the worker thread running the
# statement: cancel before that join (this hook runs before concurrent.futures' own, which waits).
if hasattr(threading, "_register_atexit"):
    threading._register_atexit(cancel_all)


class BatchAnswerer:
    """Answers batches for one DuckDB connection (whose cache cursor it owns)."""

    def __init__(self, cache: Cache, config: ProjectConfig | None,
                 models: dict[str, type[BaseModel]] | None = None):
        self.cache, self.config, self.models = cache, config, models or {}

    # ----------------------------------------------------------------- entry point
    def answer(self, endpoint: str, requests: list[str | None], response_format: str | None,
            parameters: list[str | None], node: str | None = None) -> list[Outcome]:
        return self.answer_keyed(endpoint, requests, response_format, parameters, node)[1]

    def answer_keyed(self, endpoint: str, requests: list[str | None], response_format: str | None,
                     parameters: list[str | None], node: str | None = None, prepass: bool = False
                     ) -> tuple[list[str | None], list[Outcome]]:
        """(cache keys, outcomes) in the order of ``requests``; ``prepass``: a model's batch pre-pass,
        whose rows the model's own SQL counts (this call records only what it spent)."""
        fmt = parse_response_format(response_format, self.models) if response_format else None
        config = endpoints.resolve(endpoint, self.config)
        identity = endpoints.identity(endpoint, self.config)
        keys, jobs = self._jobs(endpoint, requests, parameters, fmt, config, identity)
        collector = plan.active()
        if collector is not None:
            return keys, self._dry_run(collector, endpoint, node, keys, jobs, fmt, config)
        backend = endpoints.get_backend(endpoint, self.config)
        batch = _Batch(self, endpoint, config, backend, identity, fmt, node, len(requests))
        batch.non_null, batch.prepass = len(requests) - keys.count(None), prepass
        answers = batch.answer(jobs)
        return keys, [Outcome(None) if key is None else answers[key] for key in keys]

    def keys(self, endpoint: str, requests: list[str | None], response_format: str | None,
             parameters: list[str | None]) -> list[str | None]:
        """The cache key answer() gives each request (None for NULL), without calling: the Spark target
        anti-joins its cache table with these, so both engines share one key function."""
        fmt = parse_response_format(response_format, self.models) if response_format else None
        config = endpoints.resolve(endpoint, self.config)
        identity = endpoints.identity(endpoint, self.config)
        return self._jobs(endpoint, requests, parameters, fmt, config, identity)[0]

    def _jobs(self, endpoint_name: str, requests: list[str | None], parameters: list[str | None],
              fmt: ResponseFormat | None,
              config: EndpointConfig, identity: dict[str, Any]
              ) -> tuple[list[str | None], dict[str, _Job]]:
        keys: list[str | None] = []
        jobs: dict[str, _Job] = {}
        defaults = endpoint_defaults(config.parameters)  # validated once, not per row
        schema = fmt.json_schema if fmt else None
        keymaker = KeyMaker(identity, schema)
        # per distinct parameters text (usually one per call): merged, sent and pre-canonical forms,
        # shared read-only by the rows that carry it
        settings: dict[str | None, tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {}
        for request, params in zip(requests, parameters, strict=False):
            if request is None:
                keys.append(None)  # NULL request → NULL answer, no call (as Databricks does)
                continue
            messages = to_messages(request)
            if params not in settings:
                merged = merge(defaults, dict(parse_parameters_json(params)), config.provider, endpoint_name)
                settings[params] = (merged, {k: v for k, v in merged.items() if k not in CACHE_ONLY},
                                    legacy_parameters(config.parameters, params))
            merged, sent, legacy = settings[params]
            key = keymaker.key(messages, merged)
            keys.append(key)
            if key not in jobs:
                jobs[key] = _Job(key, LLMRequest(tuple(messages), sent, schema), messages, merged,
                                 invalid_left=config.invalid_retries,
                                 legacy_key=keymaker.key(messages, legacy) if legacy else None)
        return keys, jobs

    def _dry_run(self, collector: Any, endpoint: str, node: str | None, keys: list[str | None],
                 jobs: dict[str, _Job], fmt: ResponseFormat | None, config: EndpointConfig
                 ) -> list[Outcome]:
        """`sqlsynth plan`: count and estimate; answer with format-shaped placeholders, call nothing."""
        hits = self.cache.lookup(list(jobs))
        cached = set(hits)
        real = [k for k in keys if k is not None]
        prompt = [sum(len(m["content"]) for m in jobs[k].messages) // 4 + 1 for k in real]
        answer = [int(jobs[k].parameters.get("max_tokens") or jobs[k].parameters.get("max_new_tokens")
                      or plan.DEFAULT_ANSWER_TOKENS) for k in real]
        prices = (config.price_per_1k_input_tokens, config.price_per_1k_output_tokens)
        if config.batch:  # the provider's batch price
            prices = tuple(None if p is None else p * config.batch_price_factor for p in prices)
        collector.add(node or "(query)", endpoint, real, cached, prompt, answer, prices, batch=config.batch)
        # Cached rows answer for real; the others with a distinct format-shaped placeholder, so models
        # downstream (unnest, joins) see the right number of rows.
        def value(key: str) -> str:
            if key in hits:
                return hits[key][0]
            return json.dumps(example_value(fmt.json_schema, key[:8])) if fmt else f"(plan placeholder {key[:8]})"
        return [Outcome(None if k is None else value(k)) for k in keys]


class _Batch:
    def __init__(self, answerer: BatchAnswerer, endpoint: str, config: EndpointConfig, backend: Any,
                 identity: dict[str, Any], fmt: ResponseFormat | None, node: str | None, rows: int):
        self.answerer, self.endpoint, self.config, self.backend = answerer, endpoint, config, backend
        self.identity, self.fmt, self.node = identity, fmt, node
        self.rows = self.non_null = rows
        self.counters = Counters(rows=rows)
        self.progress = BatchProgress(node, endpoint, rows)
        self.progress.line.endpoint_status = getattr(backend, "status", None)
        self.pending_cache: list[CacheRow] = []
        self.pending_calls: list[CallRow] = []
        self.owned_finals: list[tuple[str, cf.Future, Outcome]] = []
        # Completions land here from the event loop (deque appends are thread-safe and wake nobody:
        # a SimpleQueue.put woke the waiting DuckDB thread once per answer, 18% of the loop's CPU).
        self.done: deque[tuple[str, Any, Any]] = deque()
        self._tasks: set[Any] = set()
        self.epoch = _cancel_epoch[0]
        self.batch_id: str | None = None  # the provider batch being collected (batch mode): logged with each call
        self.prepass = False

    def answer(self, jobs: dict[str, _Job]) -> dict[str, Outcome]:
        answers: dict[str, Outcome] = {}
        hits = self.answerer.cache.lookup(list(jobs))
        hits.update(self._migrate_legacy([job for key, job in jobs.items() if key not in hits]))
        for key, (value, finish) in hits.items():
            answers[key] = Outcome(value, None, finish)
        settled = _prepared.get(self.node) if self.node else None
        ours = settled.answered.intersection(hits) if settled else set()  # this run's batch answered them
        self.counters.cached = len(hits) - len(ours)
        if not self.prepass:  # attribution (whose call paid for each hit); a pre-pass records only spend
            payers = self.answerer.cache.payers([k for k in hits if k not in ours])
            for key in hits.keys() - ours:
                self.counters.paid_by(payers.get(key))
        misses = [job for key, job in jobs.items() if key not in hits]
        if settled is not None:
            misses = self._settled_errors(settled, misses, answers)
        self._check_budget(len(misses))
        waiting: dict[cf.Future, str] = {}
        mine = []
        with _inflight_lock:
            for job in misses:
                other = _inflight.get(job.key)
                if other is not None:
                    waiting[other] = job.key
                    self.counters.paid_by(other.node)
                else:
                    _inflight[job.key] = _InFlight(self.node)
                    mine.append(job)
        self.counters.shared = self.non_null - len(jobs) + len(waiting)
        for future, key in waiting.items():
            future.add_done_callback(lambda f, key=key: self.done.append(("wait", key, f)))
        provider_batch = bool(mine) and self.config.batch and hasattr(self.backend, "request_body")
        if not provider_batch:
            self._submit(mine)
        self.progress.advance(self.rows - len(mine) - len(waiting), cached=self.counters.cached)
        try:
            if provider_batch:
                from .batch_api import ProviderBatch

                ProviderBatch(self).answer(mine, answers)
                self._drain(0, len(waiting), answers)
            else:
                self._drain(len(mine), len(waiting), answers)
        finally:
            self.flush(force=True)
            self._release_unfinished(mine, answers)
            record(self.endpoint, self.node, _spent(self.counters) if self.prepass else self.counters)
        return answers

    def _settled_errors(self, settled: Prepared, misses: list[_Job], answers: dict[str, Outcome]) -> list[_Job]:
        """Requests the model's batch failed on: their error, not another batch. The misses left."""
        failed = [job for job in misses if job.key in settled.errors]
        for job in failed:
            answers[job.key] = settled.errors[job.key]
        self.counters.errors += len(failed)
        self.progress.advance(0, errors=len(failed))
        left = [job for job in misses if job.key not in settled.errors]
        if left and not self.prepass and self.config.batch:
            console.print(f"[yellow]model '{self.node}'[/yellow]: {len(left):,} ai_query requests were not in "
                          "the model's batch (a request that changes between two evaluations, e.g. random()); "
                          "they go in another batch", markup=True)
        return left

    def _migrate_legacy(self, misses: list[_Job]) -> dict[str, tuple[str, str | None]]:
        """Answers cached under a pre-canonical key (max_new_tokens spelled out...): copied under the
        new key (a one-time migration per row), so a spelling change never re-pays."""
        legacy = {job.legacy_key: job for job in misses if job.legacy_key}
        found = self.answerer.cache.lookup(list(legacy)) if legacy else {}
        moved = {}
        for old_key, (value, finish) in found.items():
            job = legacy[old_key]
            moved[job.key] = (value, finish)
            self.pending_cache.append(CacheRow(job.key, self.endpoint, self.identity, job.messages,
                                               job.parameters, self.fmt.source if self.fmt else None,
                                               value, 0, 0, finish))
        return moved

    # ----------------------------------------------------------------- calls
    def _submit(self, jobs: list[_Job]) -> None:
        """Start every job; each completion lands on ``self.done`` (thread-safe, O(1) per answer).

        One hop to the event loop per batch, not per row: 2,048 run_coroutine_threadsafe calls cost
        ~0.25 s of loop wake-ups between two batches (measured)."""
        for job in jobs:
            job.attempts += 1
        done, tasks = self.done, self._tasks
        if hasattr(self.backend, "acomplete"):
            backend = self.backend

            async def spawn() -> None:
                for job in jobs:
                    task = asyncio.ensure_future(backend.acomplete(job.request))
                    tasks.add(task)  # the loop keeps only weak references to tasks
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(lambda t, job=job: done.append(("call", job, t)))
            if jobs:
                aio.submit(spawn())
            return
        batcher = _SyncBatcher.for_backend(self.backend, self.config)
        for job in jobs:
            batcher.submit(job.request).add_done_callback(lambda f, job=job: done.append(("call", job, f)))

    def _drain(self, calls_left: int, waits_left: int, answers: dict[str, Outcome]) -> None:
        last_flush = time.monotonic()
        while calls_left or waits_left:
            self.check_interrupted()
            time.sleep(DRAIN_PAUSE_S)  # answers gather meanwhile: one hand-off per pause, not per answer
            ready = [self.done.popleft() for _ in range(len(self.done))]
            finished = 0
            for kind, ref, future in ready:
                if kind == "wait":
                    answers[ref] = future.result()
                    waits_left -= 1
                    finished += 1
                    continue
                outcome = self.settle(ref, _result_of(future))
                if outcome is None:  # invalid answer, asked again
                    self._submit([ref])
                    continue
                answers[ref.key] = outcome
                calls_left -= 1
                finished += 1
            self.progress.advance(finished)
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                self.flush()
                last_flush = time.monotonic()

    def check_interrupted(self, hint: str = "run again to continue where it stopped") -> None:
        """Raise (and stop this batch's requests) once cancel_all() was called (Ctrl-C)."""
        if _cancel_epoch[0] != self.epoch:
            self._cancel_tasks()
            raise LLMError(f"ai_query on endpoint '{self.endpoint}' interrupted; answers received so far "
                           "are cached", hint=hint)

    def _cancel_tasks(self) -> None:
        tasks = self._tasks

        def cancel() -> None:
            for task in list(tasks):
                task.cancel()
        if tasks:
            aio.loop().call_soon_threadsafe(cancel)

    def settle(self, job: _Job, result: LLMResult) -> Outcome | None:
        """Validate one answer: an Outcome, or None when the request was changed and must be re-sent."""
        self.counters.calls += 1
        self.counters.retries += max(result.attempts - 1, 0)
        self.counters.prompt_tokens += result.prompt_tokens
        self.counters.completion_tokens += result.completion_tokens
        self.counters.cost += cost_of(self.config, result.prompt_tokens, result.completion_tokens)
        self.progress.advance(0, tokens=result.prompt_tokens + result.completion_tokens, calls=1)
        status, value, error = "ok", result.text, result.error
        if error is None and self.fmt is not None:
            try:
                value = self.fmt.validate(result.text or "")
            except ValueError as exc:
                status, error = "invalid", str(exc)
                if job.invalid_left > 0:
                    self._log(job, result, status, error)
                    self._reask(job, result.text or "", error)
                    return None
        if error is not None:
            status = status if status == "invalid" else "error"
            self.counters.errors += 1
            self.progress.advance(0, errors=1)
            value = None
        finish = "error" if error is not None else (result.finish_reason or "stop")
        self._log(job, result, status, error, finish)
        outcome = Outcome(value, error, finish)
        if error is None:
            if self.prepass:  # answered by the model's batch: the model's SQL does not count it as cached
                prepared(self.node).answered.add(job.key)  # type: ignore[arg-type]
            self.pending_cache.append(CacheRow(
                job.key, self.endpoint, self.identity, job.messages, job.parameters,
                self.fmt.source if self.fmt else None, value or "", result.prompt_tokens,
                result.completion_tokens, finish))
        with _inflight_lock:
            final = _inflight.get(job.key)
        if final is not None:
            self.owned_finals.append((job.key, final, outcome))
        return outcome

    def _reask(self, job: _Job, answer: str, error: str) -> None:
        """Show the model its invalid answer and what is wrong; bounded by invalid_retries."""
        job.invalid_left -= 1
        self.counters.retries += 1
        nudge = [{"role": "assistant", "content": answer},
                 {"role": "user", "content": f"That answer is invalid: {error}. "
                                             "Reply again with only the JSON object."}]
        job.request = LLMRequest(tuple(job.request.messages) + tuple(nudge), job.request.parameters,
                                 job.request.response_schema)

    def _log(self, job: _Job, result: LLMResult, status: str, error: str | None,
             finish: str | None = None) -> None:
        self.pending_calls.append(CallRow(
            self.endpoint, self.identity, job.key, self.node, status, result.attempts,
            result.prompt_tokens, result.completion_tokens, result.latency_s * 1000.0, error,
            finish or result.finish_reason, self.batch_id))

    # ----------------------------------------------------------------- commits
    def flush(self, force: bool = False) -> None:
        rows, calls = self.pending_cache, self.pending_calls
        self.pending_cache, self.pending_calls = [], []
        self.answerer.cache.write(rows, calls)
        # Only now (answer durable) may waiters stop waiting and the in-flight entry go.
        finals, self.owned_finals = self.owned_finals, []
        with _inflight_lock:
            for key, final, outcome in finals:
                _inflight.pop(key, None)
                final.set_result(outcome)

    def _release_unfinished(self, mine: list[_Job], answers: dict[str, Outcome]) -> None:
        """After an exception (budget, Ctrl-C) free our in-flight entries so waiters do not hang."""
        with _inflight_lock:
            for job in mine:
                final = _inflight.pop(job.key, None)
                if final is not None and not final.done():
                    final.set_result(answers.get(job.key) or Outcome(None, "cancelled"))

    def _check_budget(self, needed: int) -> None:
        limit = self.config.max_calls
        if limit is None or not needed:
            return
        made = calls_made(self.endpoint) + self.counters.calls
        if made + needed > limit:
            raise BudgetError(
                f"endpoint '{self.endpoint}': {needed} uncached calls needed now, {made} already made "
                f"in this run, max_calls is {limit}",
                hint="run `sqlsynth plan` to see the numbers; raise max_calls in project.yml or select fewer models")


def root_error(errors: list[str]) -> str:
    """The error to show for many failed rows: the cause (a 401, say), not a row that was never sent
    because the endpoint had stopped on that cause."""
    return next((e for e in errors if not e.startswith(NOT_SENT)), errors[0])


def _spent(counters: Counters) -> Counters:
    """A pre-pass's counters without its rows: the model's SQL counts those (cached, errors) itself."""
    return Counters(calls=counters.calls, retries=counters.retries, prompt_tokens=counters.prompt_tokens,
                    completion_tokens=counters.completion_tokens, cost=counters.cost)


def _result_of(future: Any) -> LLMResult:
    try:
        return future.result()
    except LLMError:
        raise
    except (Exception, asyncio.CancelledError) as exc:  # a backend bug or a local-model failure: this row fails, not the process
        return LLMResult(text=None, error=f"{type(exc).__name__}: {exc}")


def to_messages(request_json: str) -> list[dict[str, str]]:
    """ai_query's request as DuckDB's to_json wrote it: a string, or a list of {role, content} structs."""
    try:
        value = json.loads(request_json)
    except ValueError:
        value = request_json  # the macro path may pass plain text
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        out = []
        for m in value:
            role = m.get("role")  # not stripped: " assistant" is a typo to report, not to fix
            if role not in _ROLES or not isinstance(m.get("content"), str):
                raise LLMError(f"ai_query request message {m!r} needs role in {sorted(_ROLES)} and "
                               "a string content")
            out.append({"role": role, "content": m["content"]})
        return out
    raise LLMError(f"ai_query request must be a string or a list of {{role, content}} structs, got {value!r}"[:200])


class _SyncBatcher:
    """For backends without ``acomplete`` (the local model): one worker thread gathers pending requests
    from every query into chunks of ``batch_size`` and calls ``generate_many`` — rows commit per chunk."""

    _instances: dict[int, _SyncBatcher] = {}
    _lock = threading.Lock()

    def __init__(self, backend: Any, chunk: int):
        self.backend, self.chunk = backend, chunk
        self.queue: queue.Queue[tuple[LLMRequest, cf.Future]] = queue.Queue()
        threading.Thread(target=self._work, name="sqlsynth-local", daemon=True).start()

    @classmethod
    def for_backend(cls, backend: Any, config: EndpointConfig) -> _SyncBatcher:
        with cls._lock:
            batcher = cls._instances.get(id(backend))
            if batcher is None:
                # 64: the local backend's CPU batch cap (bench: 96 vs ~80 tokens/s for 32); it splits further by memory
                chunk = config.batch_size or 64
                batcher = cls._instances[id(backend)] = cls(backend, chunk)
            return batcher

    def submit(self, request: LLMRequest) -> cf.Future:
        future: cf.Future = cf.Future()
        self.queue.put((request, future))
        return future

    def _work(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.chunk:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.backend.generate_many([r for r, _ in items])
                if len(results) != len(items):
                    raise RuntimeError(f"backend answered {len(results)} of {len(items)} requests")
            except Exception as exc:  # noqa: BLE001 - reported per row; this thread must never die
                results = [LLMResult(text=None, error=f"{type(exc).__name__}: {exc}") for _ in items]
            for (_, future), result in zip(items, results, strict=True):
                future.set_result(result)
