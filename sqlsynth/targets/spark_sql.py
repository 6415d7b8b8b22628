"""DuckDB-dialect model SQL → Spark SQL (sqlglot), with the non-portable spots rewritten or refused.

Rewritten on the AST: ai_query calls (staged: spark_ai_plan.py; on the databricks target `native: true`
endpoints pass through, databricks_native.py), string_agg/group_concat (→ array_join(collect_list(...)),
or with ORDER BY → listagg(...) WITHIN GROUP (ORDER BY ...)), from_json with a DuckDB JSON-structure
schema (→ a Spark DDL schema string), DuckDB's list functions and lambdas (spark_lists.py), the DuckDB idioms in spark_rewrites.py. Refused at compile time,
naming the model, line and portable spelling: hash(), DuckDB-only
functions, and the Python functions (udfs/, corpus functions) that are not registered on Spark yet.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from ..compile import plain_parser_message, strip_statement
from ..errors import CompileError
from .databricks_native import pass_through
from .spark_lists import NotPortable, rewrite_lists
from .spark_rewrites import REWRITES

SPARK_DIALECTS = ("spark", "databricks")

# name → (why, portable spelling)
REFUSED = {
    "ai_query": ("on Spark ai_query runs staged in table and incremental models only (a view, ephemeral "
                 "model or test would call it again at every read)",
                 "materialize the model that calls ai_query as a table (config(materialized='table'))"),
    "retrieve": ("retrieve() and vector_index are single-machine in this release (the vector store lives "
                 "in target/ of the machine that built it)",
                 "build the models that call retrieve() with --target duckdb (select around them with --exclude)"),
    "hash": ("hash() differs between DuckDB (64-bit) and Spark (32-bit murmur3)",
             "md5(cast(x as varchar)) gives the same value on both engines"),
}
PYTHON_FUNCTIONS = ("html_to_text", "token_count", "chunk_text", "embed", "retrieve", "trim_context",
                    "context_window", "read_documents")
DUCKDB_ONLY = {
    "regexp_full_match": "x rlike '^...$'", "read_csv": "a seed", "read_parquet": "a seed",
    "read_json": "a seed", "read_csv_auto": "a seed", "read_json_auto": "a seed", "range": "sequence(...)",
    "json_structure": "schema_of_json(...)", "strptime": "to_timestamp(x, fmt)",
}


def _line_of(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\s*\(", re.I)
    for number, text in enumerate(source.splitlines(), start=1):
        if pattern.search(text):
            return number
    return None


def _refuse(node: Any, name: str, why: str, fix: str) -> CompileError:
    return CompileError(f"model '{node.name}' cannot run on Spark: {name}(): {why}",
                        path=node.original_file_path, line=_line_of(node.raw_code or "", name), hint=fix)


# DuckDB's range()/generate_series() in FROM: sqlglot writes an EXPLODE whose column is not `range`
# and whose step test Spark rejects (INTERVAL '1' DAY < 0), so it is refused with a spelling that ports.
SERIES_FIX = ("select i from (select unnest(generate_series(1, 100)) as i); for dates: select cast(d as date) "
              "as day from (select unnest(generate_series(date '2020-01-01', date '2020-12-31', interval 1 day)) as d)")


# DuckDB reads a quoted file path as a table (`from 'data/x/*.parquet'`); Spark would look up a table
_FILE_SCAN = re.compile(r"[/*]|\.(parquet|csv|tsv|json|jsonl|ndjson|txt)(\.gz|\.zst)?$", re.I)


def _check_file_scans(tree: exp.Expression, node: Any) -> None:
    for table in tree.find_all(exp.Table):
        name = table.this
        if isinstance(name, exp.Identifier) and name.quoted and not table.args.get("db") \
                and _FILE_SCAN.search(name.this):
            raise CompileError(f"model '{node.name}' cannot run on Spark: from '{name.this}': DuckDB reads a "
                               "file path as a table, Spark looks up a table of that name",
                               path=node.original_file_path, line=_line_of_text(node.raw_code or "", name.this),
                               hint="make the file a seed, or build this model with --target duckdb")


def _line_of_text(source: str, text: str) -> int | None:
    return next((n for n, line in enumerate(source.splitlines(), start=1) if text in line), None)


def _check_functions(tree: exp.Expression, node: Any, python_names: set[str]) -> None:
    _check_file_scans(tree, node)
    for series in tree.find_all(exp.GenerateSeries):
        if isinstance(series.parent, exp.Table):
            name = "range" if series.args.get("is_end_exclusive") else "generate_series"
            raise _refuse(node, name, "a table function whose column name and bounds do not carry over to Spark",
                          f"a list unnested in a subquery: {SERIES_FIX}")
    for function in tree.find_all(exp.Anonymous, exp.Func):
        name = (function.name if isinstance(function, exp.Anonymous) else "").lower()
        if isinstance(function, exp.Anonymous) and name:
            if name in REFUSED:
                raise _refuse(node, name, *REFUSED[name])
            if name in python_names:
                raise _refuse(node, name, "a Python function is a session function on Spark, which a "
                              f"persistent view ({node.materialized} model) cannot call",
                              "materialize this model as a table (config(materialized='table'))")
            if name in DUCKDB_ONLY:
                raise _refuse(node, name, "a DuckDB-only function", f"the portable spelling: {DUCKDB_ONLY[name]}")


def spark_type(structure: Any) -> str:
    """A DuckDB json_structure value ({"a": "INTEGER", "b": ["VARCHAR"]}) as a Spark DDL type."""
    if isinstance(structure, dict):
        fields = ", ".join(f"`{k}`: {spark_type(v)}" for k, v in structure.items())
        return f"struct<{fields}>"
    if isinstance(structure, list) and len(structure) == 1:
        return f"array<{spark_type(structure[0])}>"
    if isinstance(structure, str):
        return exp.DataType.build(structure, dialect="duckdb").sql(dialect="spark")
    raise ValueError(f"unsupported JSON structure {structure!r}")


def _from_json_schema(structure: Any) -> str:
    """from_json's schema: an object as a column list (`a` INT, `b` array<STRING>; Spark refuses colons at
    the top level), anything else as a type."""
    if isinstance(structure, dict):
        return ", ".join(f"`{k}` {spark_type(v)}" for k, v in structure.items())
    return spark_type(structure)


def _rewrite(tree: exp.Expression, node: Any, dialect: str) -> exp.Expression:
    if dialect not in SPARK_DIALECTS:  # Spark SQL's own list functions (0-based lambda index) stay as written
        try:
            tree = rewrite_lists(tree)
        except NotPortable as exc:
            raise _refuse(node, exc.name, exc.why, f"the portable spelling: {exc.fix}") from None

    def one(expression: exp.Expression) -> exp.Expression:
        for rewrite in REWRITES:
            expression = rewrite(expression)
        if isinstance(expression, exp.CTE) and expression.args.get("materialized") is not None:
            expression.set("materialized", None)  # DuckDB's hint; Spark has no such CTE keyword
        if isinstance(expression, exp.GroupConcat):
            separator = expression.args.get("separator") or exp.Literal.string(",")
            if isinstance(expression.this, exp.Order):  # collect_list keeps no order; Spark 4's listagg does
                ordered = expression.this
                return exp.WithinGroup(this=exp.Anonymous(this="listagg", expressions=[ordered.this, separator]),
                                       expression=exp.Order(expressions=ordered.expressions))
            values = exp.Anonymous(this="collect_list", expressions=[expression.this])
            return exp.Anonymous(this="array_join", expressions=[values, separator])
        if isinstance(expression, exp.FromJson):
            schema = expression.expression
            if isinstance(schema, exp.Literal) and schema.is_string and schema.this.lstrip().startswith("{"):
                try:
                    ddl = _from_json_schema(json.loads(schema.this))
                except (ValueError, SqlglotError) as exc:
                    raise _refuse(node, "from_json", f"cannot translate the schema: {exc}",
                                  "write the schema as Spark DDL with config(dialect='spark')") from None
                expression.set("expression", exp.Literal.string(ddl))
        return expression

    return tree.transform(one)


def to_spark_sql(rendered: str, node: Any, dialect: str, relations: list[str],
                 python_names: set[str] = frozenset(), native: dict[str, str] | None = None,
                 ai: Any = None) -> str:
    """The exact SQL Spark runs for one rendered model/test.

    ``native`` (databricks target): endpoint → Model Serving endpoint whose ai_query calls Databricks runs;
    ``ai`` (the compiler's planner) stages the other ai_query calls; without it ai_query is refused."""
    sql = strip_statement(rendered)
    has_ai = re.search(r"\bai_query\s*\(", sql, re.I) is not None
    if dialect in SPARK_DIALECTS:
        for rel in relations:  # ref() renders "schema"."name"; Spark quotes identifiers with backticks
            sql = sql.replace(rel, rel.replace('"', "`"))
        if not (has_ai and (native or ai is not None)):
            return sql
    try:
        tree = sqlglot.parse_one(sql, read=dialect or "duckdb")
    except (ParseError, SqlglotError) as exc:
        raise CompileError(f"model '{node.name}': cannot transpile to Spark: "
                           f"{plain_parser_message(str(exc).splitlines()[0])}",
                           path=node.original_file_path,
                           hint="write portable SQL, or the Spark spelling with config(dialect='spark')") from None
    tree = pass_through(tree, native or {}, databricks_semantics=dialect in SPARK_DIALECTS)
    if any(f.name.lower() == "retrieve" for f in tree.find_all(exp.Anonymous)):
        raise _refuse(node, "retrieve", *REFUSED["retrieve"])  # before ai_query's checks: it cannot be fixed here
    if has_ai and ai is not None:
        tree = ai.plan(tree, node, dialect)
    _check_functions(tree, node, python_names)
    tree = _rewrite(tree, node, dialect)
    return tree.sql(dialect="spark", pretty=True)
