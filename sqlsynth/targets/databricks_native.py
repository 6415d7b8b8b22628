"""`native: true` endpoints on the databricks target: Databricks' own ai_query, passed through.

A Databricks Model Serving endpoint answers ai_query inside Databricks SQL itself, so on the databricks
target sqlsynth neither stages such calls nor caches their answers: the call keeps its arguments, only
the endpoint argument becomes the Serving endpoint's name (the endpoint's `model:`) and DuckDB's
named-argument `:=` becomes `=>`. On every other target a native endpoint is an ordinary
OpenAI-compatible endpoint (Databricks serves one at https://<workspace>/serving-endpoints).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp


class NativeAIQuery(exp.Expression, exp.Func):
    """Databricks' ai_query as written: its own node, so the staging and refusal passes (which look for
    the name ai_query) leave it alone, printed back as AI_QUERY(...)."""

    arg_types = {"expressions": True}
    is_var_len_args = True
    _sql_names = ["AI_QUERY"]


def native_endpoints(project: Any) -> dict[str, str]:
    """endpoint name → Model Serving endpoint name, for the native endpoints (databricks target only)."""
    if getattr(project.target, "type", None) != "databricks":
        return {}
    return {name: endpoint.model for name, endpoint in project.config.endpoints.items()
            if getattr(endpoint, "native", False)}


def pass_through(tree: exp.Expression, endpoints: dict[str, str], databricks_semantics: bool) -> exp.Expression:
    """Every ai_query call on a native endpoint, as Databricks' own ai_query.

    In a DuckDB-dialect model ai_query with a STRUCT responseFormat returns the struct (sqlsynth's
    meaning); Databricks' returns its JSON text, so there the call is wrapped in from_json(..., format)."""
    if not endpoints:
        return tree

    def one(expression: exp.Expression) -> exp.Expression:
        if not (isinstance(expression, exp.Anonymous) and expression.name.lower() == "ai_query"):
            return expression
        first = expression.expressions[0] if expression.expressions else None
        if not (isinstance(first, exp.Literal) and first.is_string and first.this in endpoints):
            return expression
        arguments = [exp.Literal.string(endpoints[first.this]), *map(_named, expression.expressions[1:])]
        call = NativeAIQuery(expressions=arguments)
        struct = None if databricks_semantics else _struct_format(arguments)
        return exp.Anonymous(this="from_json", expressions=[call, struct]) if struct else call

    return tree.transform(one)


def _struct_format(arguments: list[exp.Expression]) -> exp.Literal | None:
    for argument in arguments:
        if isinstance(argument, exp.Kwarg) and argument.this.name.lower() == "responseformat":
            value = argument.expression
            if isinstance(value, exp.Literal) and value.is_string and value.this.strip().upper().startswith("STRUCT<"):
                return exp.Literal.string(value.this)
    return None


def _named(argument: exp.Expression) -> exp.Expression:
    """DuckDB's `name := value` as Databricks' `name => value`."""
    if isinstance(argument, exp.PropertyEQ):
        return exp.Kwarg(this=exp.var(argument.this.name), expression=argument.expression)
    return argument
