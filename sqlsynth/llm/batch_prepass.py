"""Provider batch mode, one batch per model (endpoint option ``batch: true``).

DuckDB hands ai_query 2,048 rows at a time, so answering inside the UDF would submit one provider batch
per chunk. Instead, before a model that calls a batch endpoint builds (a build preparer registered by
sqlsynth.llm.plugin; materialize.py enters it around the materialization):
1. each ai_query call's requests are computed by a query over the model's inputs (the call's own SELECT
   projecting its endpoint, request and parameters: llm/request_query.py, shared with the Spark target),
   de-duplicated by DuckDB;
2. BatchAnswerer keys them, drops those already cached and those a batch submitted by an earlier run will
   answer (that batch is resumed, never resubmitted), and sends the rest as ONE provider batch
   (llm/batch_api.py), polled with a progress line; answers land in the per-row cache;
3. the model's SQL runs and reads every answer from the cache; requests the batch failed on get their
   error (failOnError decides what it does), never a second batch in this run.
A call whose requests depend on another call's answers (ai_query over an ai_query's result) waits for that
one: one batch per level. Where a call's requests cannot be computed apart (inside a subquery or a set
operation, positional GROUP BY, DISTINCT ON) the model falls back to one batch per chunk, with a note.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from ..console import console
from ..errors import SqlsynthError
from . import endpoints
from .batch import BatchAnswerer, forget_prepared, prepared, root_error
from .cache import Cache
from .errors import LLMCallError
from .request_query import request_query
from .transform import UDF_NAME

NOT_RUN = ("view", "ephemeral")  # materializations that do not run the model's SQL while building


class NotPlannable(Exception):
    """A call whose requests cannot be computed apart from the model (the reason is the message)."""


@dataclass(frozen=True)
class RequestCall:
    """One ai_query call of a model on a batch endpoint (or on an endpoint named by a column)."""

    sql: str                    # DuckDB SQL: distinct (endpoint, request, parameters) of the call
    depth: int                  # how many ai_query calls its requests depend on
    response_format: str | None
    fail_on_error: bool
    node: str                   # the node name the call's UDF carries (cache log, usage)


@contextmanager
def batch_first(ctx: Any) -> Iterator[None]:
    """Build preparer: a model's batch-endpoint requests go as one provider batch before its SQL runs."""
    nodes: set[str] = set()
    try:
        try:
            _answer_model(ctx, nodes)
        except SqlsynthError as exc:  # name the model's file, as a failure inside its SQL does
            if exc.path is not None:
                raise
            raise type(exc)(exc.message, path=ctx.node.original_file_path, hint=exc.hint) from None
        yield
    finally:
        for node in nodes:
            forget_prepared(node)


def batch_endpoints(config: Any) -> set[str]:
    return {name for name, endpoint in endpoints.endpoints(config).items() if endpoint.batch}


def _answer_model(ctx: Any, nodes: set[str]) -> None:
    names = batch_endpoints(ctx.db.project.config)
    if not names or ctx.node.materialized in NOT_RUN or UDF_NAME not in ctx.sql.lower():
        return
    try:
        calls = plan_calls(ctx.sql, names)
    except NotPlannable as exc:
        console.print(f"[yellow]model '{ctx.node.name}'[/yellow]: ai_query batch mode sends one provider batch "
                      f"per 2,048 rows here, not one per model: {exc}", markup=True, highlight=False)
        return
    if not calls:
        return
    nodes.update(call.node for call in calls)
    answerer = BatchAnswerer(Cache(ctx.db.con), ctx.db.project.config, ctx.db.project.pydantic_models)
    try:
        for depth in sorted({call.depth for call in calls}):
            _answer_level(ctx.cur, answerer, [c for c in calls if c.depth == depth], names)
    finally:
        answerer.cache.close()


def plan_calls(sql: str, names: set[str]) -> list[RequestCall]:
    """The model's ai_query calls that may reach a batch endpoint, each with the query of its requests."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise NotPlannable(f"sqlglot cannot parse its SQL ({str(exc).splitlines()[0][:120]})") from None
    calls = []
    for call in tree.find_all(exp.Anonymous):
        if call.name.lower() != UDF_NAME or len(call.expressions) != 6:
            continue
        endpoint, request, fmt, params, fail, node = call.expressions
        if _string(endpoint) and endpoint.this not in names:
            continue  # a live endpoint: answered when the model runs
        if not (_string(node) and isinstance(fail, exp.Boolean) and (_string(fmt) or isinstance(fmt, exp.Null))):
            raise NotPlannable("an ai_query call without its constant options")
        query, depth = _requests(tree, call, endpoint, request, params)
        calls.append(RequestCall(query, depth, fmt.this if _string(fmt) else None, bool(fail.this), node.this))
    return calls


def _requests(tree: exp.Expression, call: exp.Anonymous, endpoint: exp.Expression,
              request: exp.Expression, params: exp.Expression) -> tuple[str, int]:
    """The SQL of the call's distinct requests, and how many ai_query calls they depend on."""
    select = call.find_ancestor(exp.Select)
    if select is None:
        raise NotPlannable("ai_query outside a SELECT")
    group = select.args.get("group")
    if group is not None and (group.args.get("all") or any(isinstance(e, exp.Literal) for e in group.expressions)):
        raise NotPlannable("GROUP BY ALL or by position (name the grouped columns)")
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        raise NotPlannable("SELECT DISTINCT ON (compute it in a CTE first)")
    projections = [exp.alias_(endpoint.copy(), "endpoint"), exp.alias_(request.copy(), "request"),
                   exp.alias_(params.copy(), "parameters")]
    query = request_query(tree, select, projections, lambda message, hint: NotPlannable(f"{message}; {hint}"))
    depth = sum(1 for c in query.find_all(exp.Anonymous) if c.name.lower() == UDF_NAME)
    return (f"select distinct endpoint, request, parameters from (\n{query.sql('duckdb')}\n) as requests "
            "where request is not null", depth)


def _string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _answer_level(cur: Any, answerer: BatchAnswerer, calls: list[RequestCall], names: set[str]) -> None:
    """The distinct requests of independent calls, one answer (one provider batch) per endpoint and
    response format; a strict call (failOnError) with a failed request fails the model here."""
    groups: dict[tuple[str, str | None, str], dict[tuple[str, str | None], int]] = {}
    strict: list[tuple[tuple[str, str | None, str], list[int]]] = []
    for call in calls:
        mine: dict[tuple[str, str | None, str], list[int]] = {}
        for endpoint, request, parameters in cur.execute(call.sql).fetchall():
            if endpoint not in names:
                continue  # a live endpoint named by a column: answered when the model runs
            group = (endpoint, call.response_format, call.node)
            items = groups.setdefault(group, {})
            mine.setdefault(group, []).append(items.setdefault((request, parameters), len(items)))
        if call.fail_on_error:
            strict.extend(mine.items())
    outcomes: dict[tuple[str, str | None, str], list[Any]] = {}
    for group, items in groups.items():
        endpoint, response_format, node = group
        keys, outcomes[group] = answerer.answer_keyed(
            endpoint, [r for r, _ in items], response_format, [p for _, p in items], node, prepass=True)
        errors = prepared(node).errors
        for key, outcome in zip(keys, outcomes[group], strict=True):
            if key is not None and outcome.error is not None:
                errors[key] = outcome
    for group, indices in strict:
        endpoint, _, node = group
        failed = [error for error in (outcomes[group][i].error for i in indices) if error]
        if failed:
            raise LLMCallError(
                f"model '{node}': ai_query on endpoint '{endpoint}' failed for {len(failed)} of {len(indices)} "
                f"requests in its batch; first error: {root_error(failed)}",
                hint="requests that succeeded are cached, so a re-run sends only the failed ones; "
                     "or pass failOnError := false to keep going and get the error per row")
