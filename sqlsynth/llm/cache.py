"""The persistent per-row cache and the call log, as tables in the project's DuckDB file.

``sqlsynth.cache`` holds one validated answer per key; ``sqlsynth.calls`` one row per request that
reached a server (status, tokens, latency, error). Both are written through a *cursor* of the
connection that runs the query: a cursor is its own connection to the same database, so its
auto-committed inserts are durable while the outer statement (say ``CREATE TABLE AS SELECT
ai_query(...)``) is still running — a kill -9 loses only the rows in flight (measured, bench 4).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from ..masking import mask, mask_data

SCHEMA = "sqlsynth"
CACHE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.cache (
    key VARCHAR PRIMARY KEY,
    endpoint VARCHAR, provider VARCHAR, model VARCHAR, base_url VARCHAR,
    request JSON, parameters JSON, response_format VARCHAR,
    response VARCHAR, prompt_tokens INTEGER, completion_tokens INTEGER,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS {SCHEMA}.calls (
    ts TIMESTAMP, endpoint VARCHAR, provider VARCHAR, model VARCHAR, key VARCHAR, node VARCHAR,
    status VARCHAR, attempts INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
    latency_ms DOUBLE, error VARCHAR);
ALTER TABLE {SCHEMA}.calls ADD COLUMN IF NOT EXISTS finish_reason VARCHAR;
ALTER TABLE {SCHEMA}.cache ADD COLUMN IF NOT EXISTS finish_reason VARCHAR;
ALTER TABLE {SCHEMA}.calls ADD COLUMN IF NOT EXISTS batch_id VARCHAR;
CREATE TABLE IF NOT EXISTS {SCHEMA}.pending_batches (
    batch_id VARCHAR, endpoint VARCHAR, node VARCHAR, key VARCHAR, submitted_at TIMESTAMP);
"""
CACHE_COLUMNS = ("key", "endpoint", "provider", "model", "base_url", "request", "parameters",
                  "response_format", "response", "prompt_tokens", "completion_tokens", "created_at",
                  "finish_reason")
CALL_COLUMNS = ("ts", "endpoint", "provider", "model", "key", "node", "status", "attempts",
                 "prompt_tokens", "completion_tokens", "latency_ms", "error", "finish_reason",
                "batch_id")


class KeyMaker:
    """Cache keys: sha256 over everything that changes the answer (endpoint identity, response schema,
    messages, parameters; temperature included, so only seed/sample_id or another parameter makes a
    distinct sample). The per-batch constant part (identity, schema) is serialised once."""

    def __init__(self, identity: dict[str, Any], response_schema: dict[str, Any] | None):
        self._prefix = hashlib.sha256(_canonical([identity, response_schema]).encode())

    def key(self, messages: Any, parameters: dict[str, Any]) -> str:
        digest = self._prefix.copy()
        digest.update(_canonical([messages, parameters]).encode())
        return digest.hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class CacheRow:
    key: str
    endpoint: str
    identity: dict[str, Any]
    messages: Any
    parameters: dict[str, Any]
    response_format: str | None
    response: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None


@dataclass
class CallRow:
    endpoint: str
    identity: dict[str, Any]
    key: str
    node: str | None
    status: str
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    error: str | None
    finish_reason: str | None = None
    batch_id: str | None = None  # the provider batch that answered it (batch mode)


class Cache:
    """Reads and writes the cache tables through one cursor; thread-safe (DuckDB threads share it)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self._connection = connection
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self.writable = True
        self.warning: str | None = None

    def _cur(self) -> duckdb.DuckDBPyConnection:
        if self._cursor is None:
            # Commits go through Arrow: import it now, before the first requests are sent, not in the
            # first commit (a loaded box spent most of a second there, and a kill -9 then lost it all).
            import pyarrow  # noqa: F401

            self._cursor = self._connection.cursor()
            try:
                self._cursor.execute(CACHE_DDL)
            except duckdb.Error as exc:  # read-only database: answers still work, nothing persists
                self.writable = False
                self.warning = f"ai_query cache is not persisted: {str(exc).splitlines()[0]}"
        return self._cursor

    def lookup(self, keys: list[str]) -> dict[str, tuple[str, str | None]]:
        """key → (cached answer, its finish_reason) for the keys that are cached."""
        if not keys:
            return {}
        with self._lock:
            cur = self._cur()
            try:
                rows = cur.execute(f"SELECT key, response, finish_reason FROM {SCHEMA}.cache WHERE key IN "
                                   f"(SELECT unnest($1::VARCHAR[]))", [keys]).fetchall()
            except duckdb.CatalogException:
                return {}
        return {key: (response, finish) for key, response, finish in rows}

    def payers(self, keys: list[str]) -> dict[str, str | None]:
        """key → the model (node) whose successful call produced the cached answer (the first one)."""
        if not keys:
            return {}
        with self._lock:
            cur = self._cur()
            try:
                rows = cur.execute(f"SELECT key, arg_min(node, ts) FROM {SCHEMA}.calls WHERE status = 'ok' AND key IN "
                                   f"(SELECT unnest($1::VARCHAR[])) GROUP BY key", [keys]).fetchall()
            except duckdb.CatalogException:
                return {}
        return dict(rows)

    def write(self, rows: list[CacheRow], calls: list[CallRow]) -> None:
        """Insert (and so commit) completed rows; called every fraction of a second while a batch runs."""
        if not (rows or calls) or not self.writable:
            return
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self._lock:
            cur = self._cur()
            if not self.writable:
                return
            cur.execute("BEGIN TRANSACTION")  # one commit (one WAL sync) for both tables
            try:
                _insert_rows(cur, rows, now)
                _insert_calls(cur, calls, now)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    # -- provider batches in flight (batch mode): which rows a submitted batch will answer
    def record_batch(self, batch_id: str, endpoint: str, node: str | None, keys: list[str]) -> None:
        """Committed right after the batch is created: a run stopped later resumes it, never resubmits."""
        if not self.writable:
            return
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self._lock:
            self._cur().execute(f"INSERT INTO {SCHEMA}.pending_batches SELECT $1, $2, $3, unnest($4::VARCHAR[]), $5",
                                [batch_id, endpoint, node, keys, now])

    def pending_batches(self, endpoint: str, keys: list[str]) -> dict[str, list[str]]:
        """batch id → those of ``keys`` a batch submitted earlier (and not yet collected) will answer."""
        if not keys:
            return {}
        with self._lock:
            try:
                rows = self._cur().execute(
                    f"SELECT batch_id, list(key ORDER BY key) FROM {SCHEMA}.pending_batches WHERE endpoint = $1 "
                    f"AND key IN (SELECT unnest($2::VARCHAR[])) GROUP BY batch_id ORDER BY min(submitted_at)",
                    [endpoint, keys]).fetchall()
            except duckdb.CatalogException:
                return {}
        return dict(rows)

    def forget_batch(self, batch_id: str) -> None:
        """The batch's answers are committed (or it failed): nothing left to resume."""
        if not self.writable:
            return
        with self._lock:
            self._cur().execute(f"DELETE FROM {SCHEMA}.pending_batches WHERE batch_id = $1", [batch_id])

    def close(self) -> None:
        with self._lock:
            if self._cursor is not None:
                self._cursor.close()
                self._cursor = None


def _insert_rows(cur: duckdb.DuckDBPyConnection, rows: list[CacheRow], now: dt.datetime) -> None:
    if rows:
        # the endpoint's URL and parameters may hold credentials: stored masked (never the key). Most
        # rows of a commit share both: each distinct value is masked once (~25 µs a row otherwise).
        urls: dict[Any, Any] = {}
        params: dict[str, str] = {}

        def masked_url(url: Any) -> Any:
            if url not in urls:
                urls[url] = mask(url)
            return urls[url]

        def masked_parameters(parameters: dict[str, Any]) -> str:
            text = json.dumps(parameters)
            if text not in params:
                params[text] = mask(json.dumps(mask_data(parameters)))
            return params[text]
        values = [(r.key, r.endpoint, r.identity.get("provider"), r.identity.get("model"),
                   masked_url(r.identity.get("base_url")), json.dumps(r.messages), masked_parameters(r.parameters),
                   r.response_format, r.response, r.prompt_tokens, r.completion_tokens, now, r.finish_reason)
                  for r in rows]
        _insert(cur, "cache", CACHE_COLUMNS, values, ignore=True)


def _insert_calls(cur: duckdb.DuckDBPyConnection, calls: list[CallRow], now: dt.datetime) -> None:
    if calls:
        values = [(now, c.endpoint, c.identity.get("provider"), c.identity.get("model"), c.key,
                   c.node, c.status, c.attempts, c.prompt_tokens, c.completion_tokens,
                   round(c.latency_ms, 3), mask(c.error), c.finish_reason, c.batch_id) for c in calls]
        _insert(cur, "calls", CALL_COLUMNS, values, ignore=False)


_SCHEMAS: dict[tuple[str, ...], Any] = {}
_INTEGER = ("prompt_tokens", "completion_tokens", "attempts")


def _arrow_schema(columns: tuple[str, ...]) -> Any:
    """Explicit Arrow types: inferring them from Python lists cost ~20 µs per row (~0.04 ms on a
    loaded box), more than the DuckDB insert itself."""
    import pyarrow as pa

    def kind(name: str) -> Any:
        if name in _INTEGER:
            return pa.int32()
        if name in ("ts", "created_at"):
            return pa.timestamp("us")
        return pa.float64() if name == "latency_ms" else pa.string()
    return pa.schema([(name, kind(name)) for name in columns])


def _insert(cur: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...],
            values: list[tuple], ignore: bool) -> None:
    import pyarrow as pa

    schema = _SCHEMAS.get(columns) or _SCHEMAS.setdefault(columns, _arrow_schema(columns))
    batch = pa.table({name: [v[i] for v in values] for i, name in enumerate(columns)}, schema=schema)
    name = f"__sqlsynth_{table}_batch"
    cur.register(name, batch)
    try:
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        cur.execute(f"{verb} INTO {SCHEMA}.{table} ({', '.join(columns)}) "
                    f"SELECT {', '.join(columns)} FROM {name}")
    finally:
        cur.unregister(name)


# --------------------------------------------------------------------------- maintenance (CLI)

def stats(connection: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per endpoint: cached answers, tokens, calls logged and errors."""
    if not _exists(connection):
        return []
    rows = connection.execute(f"""
        WITH c AS (SELECT endpoint, model, count(*) AS cached, sum(prompt_tokens) AS tin,
                          sum(completion_tokens) AS tout, max(created_at) AS last
                   FROM {SCHEMA}.cache GROUP BY ALL),
             l AS (SELECT endpoint, model, count(*) AS calls, count(*) FILTER (status <> 'ok') AS errors
                   FROM {SCHEMA}.calls GROUP BY ALL)
        SELECT coalesce(c.endpoint, l.endpoint), coalesce(c.model, l.model), coalesce(cached, 0),
               coalesce(tin, 0), coalesce(tout, 0), coalesce(calls, 0), coalesce(errors, 0), last
        FROM c FULL JOIN l ON c.endpoint = l.endpoint AND c.model = l.model ORDER BY 1, 2""").fetchall()
    names = ("endpoint", "model", "cached", "prompt_tokens", "completion_tokens", "calls", "errors", "last")
    return [dict(zip(names, row, strict=False)) for row in rows]


def clear(connection: duckdb.DuckDBPyConnection, endpoint: str | None = None) -> int:
    """Delete cached answers (all, or one endpoint's); the number deleted."""
    if not _exists(connection):
        return 0
    where, args = ("WHERE endpoint = $1", [endpoint]) if endpoint else ("", [])
    count = connection.execute(f"SELECT count(*) FROM {SCHEMA}.cache {where}", args).fetchall()[0][0]
    connection.execute(f"DELETE FROM {SCHEMA}.cache {where}", args)
    return count


def _exists(connection: duckdb.DuckDBPyConnection) -> bool:
    return bool(connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'cache'",
        [SCHEMA]).fetchall()[0][0])
