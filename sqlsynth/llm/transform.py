"""The compile-time rewrite of ai_query (a sqlglot AST transform, registered by sqlsynth.llm.plugin).

``ai_query(ep, req, responseFormat := 'STRUCT<...>', modelParameters := {...}, failOnError := b)``
becomes ``from_json(sqlsynth_ai_query(ep, to_json(req), '<format>', to_json(params), b, '<node>'),
'<duckdb json structure>')``: one Python UDF returning validated JSON text, and DuckDB's own
``from_json`` with a constant structure turning it into a typed STRUCT (so ``unnest(r.questions)``
works) without one UDF per format.

In a databricks-dialect model ai_query keeps Databricks' semantics: with responseFormat it returns the
JSON *string*; ``from_json(x, 'STRUCT<content: STRING>')`` (DDL) becomes DuckDB's JSON structure.
``failOnError => false`` gives ``STRUCT(result, errorMessage)`` in both dialects.
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

from ..errors import CompileError, SqlsynthError
from . import endpoints
from .params import check_supported, effective, validate_parameters
from .schema import duckdb_structure, parse_response_format

UDF_NAME = "sqlsynth_ai_query"
DATABRICKS = {"databricks", "spark", "spark2", "hive"}
_OPTIONS = {"responseformat": "responseFormat", "modelparameters": "modelParameters",
            "failonerror": "failOnError"}


def rewrite_ai_query(tree: exp.Expression, tctx: Any) -> exp.Expression:
    """SQL transform: rewrite every ai_query call (and, in databricks models, from_json DDL)."""
    databricks = (getattr(tctx, "source_dialect", "duckdb") or "duckdb").lower() in DATABRICKS
    # Innermost first (reversed pre-order), so an ai_query inside another one's request is rewritten too.
    for call in reversed(list(tree.find_all(exp.Anonymous, bfs=False))):
        if call.name.lower() == "ai_query":
            replacement = _rewrite_call(call, tctx, databricks)
            if call is tree:
                return replacement
            call.replace(replacement)
    if databricks:
        for node in list(tree.find_all(exp.FromJson)):
            node.replace(_rewrite_from_json(node, tctx))
    _materialize_llm_ctes(tree)
    return tree


def _materialize_llm_ctes(tree: exp.Expression) -> None:
    """A CTE that calls the LLM is evaluated once: DuckDB inlines a plain CTE into each place that reads
    its columns (a WHERE on answer.errorMessage and a SELECT of answer.result would call the UDF twice
    per row, doubling usage). Databricks SQL has no AS MATERIALIZED, so a databricks-dialect model gets
    it here."""
    for cte in tree.find_all(exp.CTE):
        if any(f.name.lower() == UDF_NAME for f in cte.this.find_all(exp.Anonymous)):
            cte.set("materialized", True)


def _fail(tctx: Any, message: str, hint: str | None = None) -> CompileError:
    return CompileError(message, path=getattr(tctx, "path", None), hint=hint)


def call_arguments(call: exp.Anonymous, tctx: Any) -> tuple[list[exp.Expression], dict[str, exp.Expression]]:
    positional, named = [], {}
    for arg in call.expressions:
        if isinstance(arg, (exp.PropertyEQ, exp.Kwarg, exp.EQ)) and isinstance(arg.this, (exp.Identifier, exp.Var, exp.Column)):
            key = arg.this.name
            if key.lower() not in _OPTIONS:
                raise _fail(tctx, f"ai_query has no option '{key}'",
                            hint="options: responseFormat, modelParameters, failOnError")
            named[_OPTIONS[key.lower()]] = arg.expression
        elif named:
            raise _fail(tctx, "ai_query: positional argument after a named one")
        else:
            positional.append(arg)
    if len(positional) != 2:
        raise _fail(tctx, f"ai_query takes (endpoint, request) and named options; got {len(positional)} "
                    "positional arguments",
                    hint="ai_query('teacher', prompt, responseFormat := 'STRUCT<content: STRING>')")
    return positional, named


def _rewrite_call(call: exp.Anonymous, tctx: Any, databricks: bool) -> exp.Expression:
    (endpoint, request), named = call_arguments(call, tctx)
    functions = getattr(tctx, "functions", None)
    _check_endpoint(endpoint, tctx, functions)
    fail = fail_on_error(named.get("failOnError"), tctx)
    structure = _structure(named.get("responseFormat"), tctx, functions)
    params = named.get("modelParameters")
    _check_parameters(params, endpoint, tctx, functions)
    udf = exp.Anonymous(this=UDF_NAME, expressions=[
        endpoint.copy(), _to_json(request), named["responseFormat"].copy() if structure else exp.Null(),
        _to_json(params) if params is not None else exp.Null(), exp.Boolean(this=fail),
        exp.Literal.string(tctx.node_name) if getattr(tctx, "node_name", None) else exp.Null()])
    result: Any = "VARCHAR" if (structure is None or databricks) else structure
    if not fail:
        result = {"result": result, "errorMessage": "VARCHAR", "finishReason": "VARCHAR"}
    if result == "VARCHAR":
        return udf
    return _from_json(udf, result)


def _to_json(node: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="to_json", expressions=[node.copy()])


def _from_json(node: exp.Expression, structure: Any) -> exp.Expression:
    text = json.dumps(structure, separators=(",", ":"))
    return exp.Anonymous(this="from_json", expressions=[node, exp.Literal.string(text)])


def fail_on_error(node: exp.Expression | None, tctx: Any) -> bool:
    if node is None:
        return True
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    raise _fail(tctx, f"ai_query failOnError must be the constant true or false, not {node.sql()}",
                hint="it decides the result type, so it cannot come from a column")


def _structure(node: exp.Expression | None, tctx: Any, functions: Any) -> Any:
    if node is None:
        return None
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise _fail(tctx, f"ai_query responseFormat must be a string constant, not {node.sql()}",
                    hint="responseFormat := 'STRUCT<content: STRING>' (it decides the result type)")
    models = getattr(functions, "pydantic_models", None) or {}
    try:
        fmt = parse_response_format(node.this, models)
    except SqlsynthError as exc:
        exc.path = exc.path or getattr(tctx, "path", None)
        raise type(exc)(exc.message, path=exc.path, hint=exc.hint) from None
    return duckdb_structure(fmt.json_schema)


def _endpoint_config(node: exp.Expression, functions: Any) -> Any:
    """The endpoint's config when the name is a constant."""
    if functions is None or not (isinstance(node, exp.Literal) and node.is_string):
        return None
    return endpoints.resolve(node.this, getattr(functions, "config", None))


def _check_endpoint(node: exp.Expression, tctx: Any, functions: Any) -> None:
    if functions is None or not (isinstance(node, exp.Literal) and node.is_string):
        return
    try:
        endpoints.resolve(node.this, getattr(functions, "config", None))
    except SqlsynthError as exc:
        raise type(exc)(exc.message, path=getattr(tctx, "path", None), hint=exc.hint) from None


def _check_parameters(node: exp.Expression | None, endpoint: exp.Expression, tctx: Any,
                      functions: Any) -> None:
    """Constant modelParameters (types, ranges, and the keys the endpoint's provider supports, merged
    over its defaults) are checked when the model compiles, not after the first call."""
    _check_endpoint_parameters(endpoint, functions)
    if node is None:
        return
    try:
        value = literal_value(node)
    except ValueError:
        return  # built from columns: checked per row at run time
    try:
        call = validate_parameters(value)
        config = _endpoint_config(endpoint, functions)
        if config is not None:
            merged = effective(config.parameters, call, None, endpoint.this)
            check_supported(merged, config.provider, endpoint.this)
            if config.provider == "transformers":  # and what the local model cannot do (n > 1 greedy...)
                from .local.options import parse_options

                parse_options(merged)
    except SqlsynthError as exc:
        raise type(exc)(exc.message, path=getattr(tctx, "path", None), hint=exc.hint) from None


def _check_endpoint_parameters(endpoint: exp.Expression, functions: Any) -> None:
    """The endpoint's own `parameters:` (its defaults), also for a call without modelParameters."""
    config = _endpoint_config(endpoint, functions)
    if config is None or not config.parameters:
        return
    where = f"endpoint '{endpoint.this}' parameters"
    try:
        check_supported(effective(config.parameters, {}, None, endpoint.this), config.provider, endpoint.this,
                        where=where)
    except SqlsynthError as exc:
        raise type(exc)(exc.message, path="project.yml", hint=exc.hint) from None


def literal_value(node: exp.Expression) -> Any:
    """The Python value of a constant (struct/map/array/number/string/bool); ValueError otherwise."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        number = float(node.this)
        return int(number) if number.is_integer() and "." not in node.this and "e" not in node.this.lower() else number
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -literal_value(node.this)
    if isinstance(node, exp.Paren):
        return literal_value(node.this)
    if isinstance(node, exp.Struct):
        out = {}
        for item in node.expressions:
            if isinstance(item, (exp.PropertyEQ, exp.Alias)):
                key = item.this.name if isinstance(item, exp.PropertyEQ) else item.alias
                out[key] = literal_value(item.expression if isinstance(item, exp.PropertyEQ) else item.this)
            else:
                raise ValueError(item.sql())
        return out
    if isinstance(node, exp.Array):
        return [literal_value(e) for e in node.expressions]
    raise ValueError(node.sql())


def _rewrite_from_json(node: exp.FromJson, tctx: Any) -> exp.Expression:
    """Databricks from_json(x, 'STRUCT<a: STRING>') / 'a STRING' → DuckDB from_json(x, '{"a":"VARCHAR"}')."""
    schema = node.expression
    if not (isinstance(schema, exp.Literal) and schema.is_string) or schema.this.lstrip().startswith("{"):
        return exp.Anonymous(this="from_json", expressions=[node.this.copy(), schema.copy()])
    from .schema import ddl_to_schema

    try:
        structure = duckdb_structure(ddl_to_schema(schema.this))
    except SqlsynthError as exc:
        raise _fail(tctx, f"from_json: {exc.message}", hint=exc.hint) from None
    return _from_json(node.this.copy(), structure)
