"""Registers ai_query in every DuckDB connection the engine opens.

Two SQL objects per connection:
- ``sqlsynth_ai_query(endpoint, request_json, response_format, parameters_json, fail_on_error, node)``,
  an arrow-vectorised Python UDF returning VARCHAR (the answer, validated JSON text, or with
  fail_on_error=false a ``{"result": ..., "errorMessage": ...}`` object). The compile transform
  (transform.py) rewrites every ``ai_query(...)`` call into it, wrapped in a typed ``from_json``.
- a TEMP macro ``ai_query(...)`` for SQL that bypassed the transform (ad-hoc queries): same call,
  VARCHAR result (Databricks semantics). TEMP, so the database file never references a Python function.

Importing this module is cheap (no openai, no torch): the heavy parts load on the first call.
"""

from __future__ import annotations

import json
from typing import Any

from .runtime import quiet_gc
from .transform import UDF_NAME

MACRO_SQL = f"""
CREATE OR REPLACE TEMP MACRO ai_query(endpoint, request, responseFormat := NULL, modelParameters := NULL,
                                      failOnError := true) AS
    {UDF_NAME}(endpoint, to_json(request), responseFormat, to_json(modelParameters), failOnError, NULL)
"""


class AIQueryFunction:
    """The Python side of sqlsynth_ai_query for one connection."""

    def __init__(self, connection: Any, config: Any = None, models: dict[str, Any] | None = None):
        from .cache import Cache

        self.cache = Cache(connection)
        self.config, self.models = config, models or {}
        self._answerer: Any = None

    def __call__(self, endpoint: Any, request: Any, response_format: Any, parameters: Any,
                 fail_on_error: Any, node: Any) -> Any:
        import pyarrow as pa

        columns = [_pylist(c) for c in (endpoint, request, response_format, parameters, fail_on_error, node)]
        rows = len(columns[0])
        out: list[str | None] = [None] * rows
        groups: dict[tuple, list[int]] = {}
        for i in range(rows):
            ep, _, rf, _, fail, label = (c[i] for c in columns)
            groups.setdefault((ep, rf, fail is not False, label), []).append(i)
        with quiet_gc():
            for (ep, rf, fail, label), indices in groups.items():
                self._answer_group(ep, rf, fail, label, indices, columns, out)
        return pa.array(out, type=pa.string())

    def _answer_group(self, endpoint: str | None, response_format: str | None, fail: bool, node: str | None,
                      indices: list[int], columns: list[list[Any]], out: list[str | None]) -> None:
        from .batch import root_error
        from .errors import LLMCallError, LLMError

        if endpoint is None:
            raise LLMError("ai_query: the endpoint name is NULL", hint="ai_query('default', prompt)")
        outcomes = self.answerer.answer(endpoint, [columns[1][i] for i in indices], response_format,
                                   [columns[3][i] for i in indices], node)
        errors = [o.error for o in outcomes if o.error]
        if fail and errors:
            where = f"model '{node}': " if node else ""
            raise LLMCallError(
                f"{where}ai_query on endpoint '{endpoint}' failed for {len(errors)} of {len(indices)} rows; "
                f"first error: {root_error(errors)}",
                hint="rows that succeeded are cached, so a re-run only retries the failed ones; "
                "or pass failOnError := false to keep going and get the error per row")
        for i, outcome in zip(indices, outcomes, strict=False):
            out[i] = outcome.value if fail else _wrap(outcome, response_format is not None)

    @property
    def answerer(self) -> Any:
        if self._answerer is None:
            from .batch import BatchAnswerer

            self._answerer = BatchAnswerer(self.cache, self.config, self.models)
        return self._answerer

    def close(self) -> None:
        self.cache.close()


def _wrap(outcome: Any, structured: bool) -> str:
    """failOnError=false: {"result": <object or text or null>, "errorMessage": ..., "finishReason": ...}."""
    if outcome.value is None:
        result = "null"
    else:
        result = outcome.value if structured else json.dumps(outcome.value)
    return (f'{{"result":{result},"errorMessage":{json.dumps(outcome.error)},'
            f'"finishReason":{json.dumps(outcome.finish_reason)}}}')


def _pylist(column: Any) -> list[Any]:
    return column.to_pylist() if hasattr(column, "to_pylist") else list(column)


def register_ai_query(connection: Any, config: Any = None, models: dict[str, Any] | None = None
                      ) -> AIQueryFunction:
    """Register sqlsynth_ai_query and the ai_query macro on a connection; close() the result before
    closing the connection (it owns a cursor for the cache)."""
    import duckdb

    function = AIQueryFunction(connection, config, models)
    varchar, boolean = duckdb.sqltype("VARCHAR"), duckdb.sqltype("BOOLEAN")
    connection.create_function(UDF_NAME, function, [varchar, varchar, varchar, varchar, boolean, varchar],
                               varchar, type="arrow", null_handling="special",
                               side_effects=True)  # never constant-folded: that would pay for a call at plan time
    connection.execute(MACRO_SQL)
    return function


def provider(connection: Any, context: Any) -> None:
    """Function provider (registered by sqlsynth.llm.plugin): called for every connection the engine opens."""
    function = register_ai_query(connection, getattr(context, "config", None),
                                 getattr(context, "pydantic_models", None))
    context.on_close(function.close)

