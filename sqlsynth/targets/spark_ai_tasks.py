"""The Python side of staged ai_query on Spark: what runs in the executors' Python workers.

Kept apart from the driver side (spark_ai_query.py) so a worker unpickling these functions imports only
what answering needs (the DuckDB path's BatchAnswerer, pyarrow), not the planner and sqlglot.
"""

from __future__ import annotations

import json
from typing import Any

from ..llm.errors import LLMError
from .spark_ai_spool import SpoolCache

CHUNK_ROWS = 4096  # rows per BatchAnswerer.answer call in a task (DuckDB hands it 2,048)
KEYED_SCHEMA = "fp string, key string, endpoint string, request string, parameters string"
# per answer: fp .. finish; per task and endpoint (fp NULL): the counters
ANSWER_SCHEMA = ("fp string, endpoint string, response string, error string, finish string, rows long, "
                 "cached long, errors long, calls long, retries long, prompt_tokens long, completion_tokens long, "
                 "cost double")


def _unwrap(text: str | None, field: str) -> str | None:
    """Spark's to_json(named_struct(field, x)) → the JSON text DuckDB's to_json(x) gives."""
    if text is None:
        return None
    value = json.loads(text).get(field)
    return None if value is None else json.dumps(value)


class KeyRequests:
    """mapInArrow: (fp, endpoint, request, parameters) → the same plus the cache key (pure, retry-safe)."""

    def __init__(self, config: Any, models: dict[str, Any], response_format: str | None):
        self.config, self.models, self.response_format = config, models, response_format

    def __call__(self, batches: Any) -> Any:
        import pyarrow as pa

        from ..llm.batch import BatchAnswerer

        answerer = BatchAnswerer(None, self.config, self.models)  # type: ignore[arg-type]  # keys() reads no cache
        for batch in batches:
            # rows asking the same (fp) are keyed once; AnswerRows de-duplicates across batches
            rows = list({row["fp"]: row for row in batch.to_pylist() if row["fp"] is not None}.values())
            for row in rows:
                row["request"] = _unwrap(row["request"], "r")
                row["parameters"] = _unwrap(row["parameters"], "p")
            for endpoint, group in _by_endpoint(rows).items():
                keys = answerer.keys(endpoint, [r["request"] for r in group], self.response_format,
                                     [r["parameters"] for r in group])
                for row, key in zip(group, keys, strict=True):
                    row["key"] = key
            yield pa.RecordBatch.from_pylist(
                [{k: r[k] for k in ("fp", "key", "endpoint", "request", "parameters")} for r in rows],
                schema=_keyed_schema())


class AnswerRows:
    """mapInArrow over one of the P partitions of keyed requests (hash-partitioned by key, so equal keys
    meet in one task): cached rows pass through, misses are answered and spooled as they complete.
    Yields one answer per distinct fingerprint, then one counters row per endpoint (fp NULL)."""

    def __init__(self, config: Any, models: dict[str, Any], response_format: str | None, node: str,
                 spool: str):
        self.config, self.models, self.response_format = config, models, response_format
        self.node, self.spool = node, spool

    def __call__(self, batches: Any) -> Any:
        from ..llm import usage
        from ..llm.batch import BatchAnswerer

        usage.reset_usage()  # this worker process's counters: one task at a time
        answerer = BatchAnswerer(SpoolCache(self.spool), self.config, self.models)  # type: ignore[arg-type]
        unique = {row["fp"]: row for batch in batches for row in batch.to_pylist()}
        tallies: dict[str, dict[str, int]] = {}
        for endpoint, group in _by_endpoint(list(unique.values())).items():
            hits = [r for r in group if r["cached"] is not None]
            misses = [r for r in group if r["cached"] is None]
            tally = tallies[endpoint] = {"rows": len(group), "cached": len(hits), "errors": 0}
            if hits:
                yield _answers([(r["fp"], endpoint, r["cached"], None, r["cached_finish"]) for r in hits])
            for start in range(0, len(misses), CHUNK_ROWS):
                chunk = misses[start:start + CHUNK_ROWS]
                outcomes = answerer.answer(endpoint, [r["request"] for r in chunk], self.response_format,
                                           [r["parameters"] for r in chunk], self.node)
                tally["errors"] += sum(o.error is not None for o in outcomes)
                yield _answers([(r["fp"], endpoint, *_answer_of(o)) for r, o in zip(chunk, outcomes, strict=True)])
        yield _counters(tallies, usage.usage_summary()["endpoints"])


def _answer_of(outcome: Any) -> tuple[str | None, str | None, str | None]:
    """(response, error, finish) as the cache table holds a success (an empty answer is '')."""
    if outcome.error is not None:
        return None, outcome.error, "error"
    return outcome.value or "", None, outcome.finish_reason


def _answers(rows: list[tuple]) -> Any:
    import pyarrow as pa

    names = ("fp", "endpoint", "response", "error", "finish")
    return pa.RecordBatch.from_pylist([dict(zip(names, r, strict=True)) for r in rows], schema=_answer_schema())


def _counters(tallies: dict[str, dict[str, int]], spent: dict[str, dict[str, Any]]) -> Any:
    """One row per endpoint: rows, cached (the table's and the spool's), errors, and what was spent."""
    import pyarrow as pa

    rows = []
    for name, tally in tallies.items():
        used = spent.get(name, {})
        rows.append({"fp": None, "endpoint": name, "rows": tally["rows"], "errors": tally["errors"],
                     "cached": tally["cached"] + int(used.get("cached", 0)),
                     **{k: used.get(k, 0) for k in ("calls", "retries", "prompt_tokens", "completion_tokens", "cost")}})
    return pa.RecordBatch.from_pylist(rows, schema=_answer_schema())


def _arrow_schema(ddl: str) -> Any:
    import pyarrow as pa

    return pa.schema([(name, {"string": pa.string(), "long": pa.int64(), "double": pa.float64()}[kind])
                      for name, kind in (c.split() for c in ddl.split(", "))])


def _answer_schema() -> Any:
    return _arrow_schema(ANSWER_SCHEMA)


def _keyed_schema() -> Any:
    return _arrow_schema(KEYED_SCHEMA)


def _by_endpoint(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["endpoint"] is None:
            raise LLMError("ai_query: the endpoint name is NULL", hint="ai_query('default', prompt)")
        groups.setdefault(row["endpoint"], []).append(row)
    return groups
