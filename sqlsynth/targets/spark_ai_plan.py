"""Compile time of staged ai_query on Spark: each ai_query call becomes a request query and a join.

For every ``ai_query(endpoint, request, ...)`` in a model the planner produces
- a *request query*: the call's own SELECT (same FROM, joins, WHERE) projecting a fingerprint of the
  request (Spark's sha2 over the endpoint, the request and the parameters as JSON), the endpoint, and the
  request and parameters as JSON; spark_ai_query.py runs it, keys, anti-joins, calls and caches;
- a rewritten model: the SELECT left-joins the stage's answers view on the fingerprint, and the call
  becomes the joined answer, typed as on DuckDB (``from_json`` with the responseFormat's type;
  ``STRUCT(result, errorMessage, finishReason)`` with failOnError => false).
The Spark SQL never calls Python per row: a retried or speculative task re-reads, it does not re-pay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ..errors import CompileError, SqlsynthError
from ..llm import endpoints
from ..llm.request_query import request_query
from ..llm.schema import duckdb_structure, parse_response_format
from ..llm.transform import DATABRICKS, call_arguments, fail_on_error
from .spark_sql import spark_type

# the answers view's columns: prefixed, so they never clash with the model's own column names
FP, RESPONSE, ERROR, FINISH = "__sqlsynth_fp", "__sqlsynth_response", "__sqlsynth_error", "__sqlsynth_finish"
_SEPARATOR = "\u0001"


@dataclass(frozen=True)
class AIStage:
    """One ai_query call of one model: what spark_ai_query.run_stage needs at run time."""

    view: str                  # temp view the model joins: FP, RESPONSE, ERROR, FINISH
    request_sql: str           # Spark SQL: fp, endpoint, request (JSON), parameters (JSON) per row
    response_format: str | None
    fail_on_error: bool
    node: str


class _Context:
    def __init__(self, node: Any, config: Any):
        self.path, self.node_name, self.config = node.original_file_path, node.name, config


def _fail(node: Any, message: str, hint: str) -> CompileError:
    return CompileError(f"model '{node.name}' cannot run on Spark: {message}", path=node.original_file_path,
                        hint=hint)


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _json(value: exp.Expression, field: str) -> exp.Expression:
    """to_json of a one-field struct: Spark's to_json takes no bare strings; nulls kept as DuckDB does."""
    options = _call("map", exp.Literal.string("ignoreNullFields"), exp.Literal.string("false"))
    return _call("to_json", _call("named_struct", exp.Literal.string(field), value.copy()), options)


def _fingerprint(endpoint: exp.Expression, request: exp.Expression, request_json: exp.Expression,
                 params_json: exp.Expression) -> exp.Expression:
    """Which answer a row needs, in Spark SQL (no Python per row); a NULL request gets no answer."""
    parts = _call("concat_ws", exp.Literal.string(_SEPARATOR), endpoint.copy(), request_json.copy(),
                  exp.Coalesce(this=params_json.copy(), expressions=[exp.Literal.string("")]))
    return exp.Case(ifs=[exp.If(this=exp.Is(this=request.copy(), expression=exp.Null()), true=exp.Null())],
                    default=_call("sha2", parts, exp.Literal.number(256)))


def _check_endpoint(endpoint: exp.Expression, node: Any, config: Any) -> None:
    """A constant endpoint must exist and be an HTTP one: the bundled model does not run in executors."""
    if not (isinstance(endpoint, exp.Literal) and endpoint.is_string):
        return
    name = endpoint.this
    try:
        endpoint_config = endpoints.resolve(name, config)
    except SqlsynthError as exc:
        raise type(exc)(exc.message, path=node.original_file_path, hint=exc.hint) from None
    if endpoint_config.provider != "openai":
        raise _fail(node, f"ai_query endpoint '{name}' is an in-process model (provider: "
                          f"{endpoint_config.provider}); on Spark ai_query calls OpenAI-compatible servers only",
                    "serve the model over HTTP (vLLM, llama.cpp, Ollama) and point the endpoint at it "
                    "(provider: openai, base_url: ...), or build this model with --target duckdb")
    if endpoint_config.batch:  # tasks would submit a batch per chunk, and the spool keeps none to resume
        raise _fail(node, f"ai_query endpoint '{name}' uses provider batch mode (batch: true), which runs on "
                          "--target duckdb only", "build this model with --target duckdb, or give Spark an "
                          "endpoint without batch: true")


def _answer(alias: str, structure: Any, fail: bool) -> exp.Expression:
    """The replacement of the call: the joined answer, typed as the DuckDB rewrite types it."""
    response: exp.Expression = exp.column(RESPONSE, table=alias)
    if structure is not None:
        response = _call("from_json", response, exp.Literal.string(spark_type(structure)))
    if fail:
        return response
    return _call("named_struct", exp.Literal.string("result"), response,
                 exp.Literal.string("errorMessage"), exp.column(ERROR, table=alias),
                 exp.Literal.string("finishReason"), exp.column(FINISH, table=alias))


def _qualify_stars(select: exp.Select) -> None:
    """A bare * would also return the joined answer columns: spell it as every source's alias.*."""
    sources = [select.args["from_"].this] + [j.this for j in select.args.get("joins") or []]
    stars = [p for p in select.expressions if isinstance(p, exp.Star)]
    for star in stars:
        qualified = [exp.Column(this=exp.Star(), table=exp.to_identifier(s.alias_or_name)) for s in sources]
        index = select.expressions.index(star)
        select.set("expressions", select.expressions[:index] + qualified + select.expressions[index + 1:])


def _stage_one(tree: exp.Expression, call: exp.Anonymous, index: int, node: Any, config: Any,
               models: dict[str, Any], dialect: str) -> AIStage | None:
    """Plan one call (None while its request query still contains another unplanned call)."""
    context = _Context(node, config)
    (endpoint, request), named = call_arguments(call, context)
    select = call.find_ancestor(exp.Select)
    if select is None:
        raise _fail(node, "ai_query outside a SELECT", "call ai_query in a SELECT list")
    for argument in [endpoint, request, *named.values()]:
        if argument.find(exp.AggFunc, exp.Window):
            raise _fail(node, "ai_query over an aggregate or window function",
                        "compute the aggregate in a CTE first, then call ai_query on its column")
    _check_endpoint(endpoint, node, config)
    fail = fail_on_error(named.get("failOnError"), context)
    format_node = named.get("responseFormat")
    response_format = None
    if format_node is not None:
        if not (isinstance(format_node, exp.Literal) and format_node.is_string):
            raise _fail(node, "ai_query responseFormat must be a string constant",
                        "responseFormat := 'STRUCT<content: STRING>'")
        response_format = format_node.this
    params = named.get("modelParameters")
    request_json = _json(request, "r")
    params_json = _json(params, "p") if params is not None else exp.cast(exp.Null(), "string")
    fingerprint = _fingerprint(endpoint, request, request_json, params_json)
    projections = [exp.alias_(fingerprint, "fp"), exp.alias_(endpoint.copy(), "endpoint"),
                   exp.alias_(request_json, "request"), exp.alias_(params_json.copy(), "parameters")]
    query = request_query(tree, select, projections, lambda message, hint: _fail(node, message, hint))
    if any(c.name.lower() == "ai_query" for c in query.find_all(exp.Anonymous)):
        return None
    structure = None
    if response_format is not None and dialect not in DATABRICKS:
        try:
            structure = duckdb_structure(parse_response_format(response_format, models).json_schema)
        except SqlsynthError as exc:
            raise type(exc)(exc.message, path=node.original_file_path, hint=exc.hint) from None
    view = f"__sqlsynth_ai_{node.name}_{index}"
    alias = f"__sqlsynth_ai{index}"
    if select.args.get("from_") is None:
        select.set("from_", exp.From(this=exp.select("1 as one").subquery("__sqlsynth_one")))
    _qualify_stars(select)
    select.join(exp.to_table(view).as_(alias), on=exp.EQ(this=exp.column(FP, table=alias), expression=fingerprint),
                join_type="left", copy=False)
    call.replace(_answer(alias, structure, fail))
    return AIStage(view, query.sql(dialect="spark", pretty=True), response_format, fail, node.name)


def plan_ai_queries(tree: exp.Expression, node: Any, config: Any, models: dict[str, Any],
                    dialect: str) -> tuple[exp.Expression, list[AIStage]]:
    """Rewrite every ai_query call of the model (parsed tree) into a join; the stages run first, in order."""
    stages: list[AIStage] = []
    for cte in tree.find_all(exp.CTE):  # DuckDB's `as materialized` hint: no Spark spelling (stages run once)
        cte.set("materialized", None)
    while True:
        calls = [c for c in tree.find_all(exp.Anonymous, bfs=False) if c.name.lower() == "ai_query"]
        if not calls:
            return tree, stages
        for call in calls:
            stage = _stage_one(tree, call, len(stages) + 1, node, config, models, dialect)
            if stage is not None:
                stages.append(stage)
                break
        else:
            raise _fail(node, "ai_query calls that depend on each other in one SELECT",
                        "give each ai_query its own CTE")


def describe(stages: list[AIStage]) -> str:
    """`compile --target spark` shows the request queries that run before the model's SELECT."""
    lines = []
    for stage in stages:
        lines.append(f"-- ai_query stage {stage.view} (responseFormat={json.dumps(stage.response_format)}, "
                     f"failOnError={str(stage.fail_on_error).lower()}): requests, keyed, anti-joined with "
                     "sqlsynth.cache, misses called")
        lines.extend(f"--   {line}" for line in stage.request_sql.splitlines())
    return "\n".join(lines) + ("\n" if lines else "")
