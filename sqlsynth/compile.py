"""Rendered SQL → checked, transpiled DuckDB SQL; the Compiler that renders and compiles nodes.

Every model is parsed before anything runs, so a syntax error stops the build with the model's file
and the line in the *source* file (rendered lines are mapped back through a diff). Models written in
another dialect (``config(dialect='databricks')``) are transpiled with sqlglot; registered AST
transforms (ai_query's rewrite, for one) run on every model that sqlglot can parse.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from .database import Database
from .datatests import generic_test_sql
from .errors import CompileError, RenderError, did_you_mean
from .extensions import registry
from .masking import mask
from .materialize import incremental_target_exists
from .node_types import RELATION_TYPES, NodeType
from .project import Node, Project
from .python_udfs import FunctionContext


@dataclass
class TransformContext:
    source_dialect: str
    node_name: str | None
    path: str | None
    functions: FunctionContext | None


# An AST rewrite applied to every parsed model/query (plugins register them: sqlsynth.extensions).
SqlTransform = Callable[[exp.Expression, TransformContext], exp.Expression]

_parser_lock = threading.Lock()
_parser_connection: Any = None


def _duckdb_parse_error(sql: str) -> str | None:
    """DuckDB's own parser has the last word on DuckDB syntax (sqlglot does not know all of it)."""
    global _parser_connection
    import duckdb

    with _parser_lock:
        if _parser_connection is None:
            _parser_connection = duckdb.connect(":memory:")
        try:
            statements = _parser_connection.extract_statements(sql)
        except duckdb.Error as exc:
            return str(exc)
    if len(statements) != 1:
        return f"expected exactly one SELECT statement, found {len(statements)}"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"a model must be a SELECT query, not {statements[0].type.name}"
    return None


def _warn(path: str, message: str) -> None:
    from .console import console

    console.print(f"[yellow]warning[/yellow] {path}: {message}", highlight=False)


def close_parser() -> None:
    global _parser_connection
    with _parser_lock:
        if _parser_connection is not None:
            _parser_connection.close()
            _parser_connection = None


def source_line(source: str, rendered: str, rendered_line: int) -> int:
    """Map a line of rendered SQL to the line of the Jinja source it most likely came from."""
    src_lines, out_lines = source.splitlines(), rendered.splitlines()
    matcher = difflib.SequenceMatcher(a=out_lines, b=src_lines, autojunk=False)
    index = rendered_line - 1
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if a0 <= index < a1:
            if tag == "equal":
                return b0 + (index - a0) + 1
            if b1 - b0 == a1 - a0:
                return b0 + (index - a0) + 1
            if b1 > b0:  # lines added or removed by Jinja: the source line that reads most like this one
                return max(range(b0, b1), key=lambda b: difflib.SequenceMatcher(
                    a=out_lines[index], b=src_lines[b], autojunk=False).ratio()) + 1
            return b0 + 1
    return max(1, min(rendered_line, len(src_lines)))


_LINE_IN_MESSAGE = re.compile(r"LINE (\d+):")


def error_line(message: str) -> int | None:
    match = _LINE_IN_MESSAGE.search(message)
    return int(match.group(1)) if match else None


def compiled_error_line(message: str, compiled: str) -> int | None:
    """The line of `compiled` that DuckDB's "LINE n: <text>" points at. A materialization wraps the
    query (create ... as), shifting n, so the quoted text decides; n only breaks ties."""
    line = error_line(message)
    quoted = re.search(r"LINE \d+: ?(.*)", message)
    if line is None or quoted is None:
        return line
    snippet = max(quoted.group(1).split("..."), key=len).strip()
    found = [i + 1 for i, text in enumerate(compiled.splitlines()) if snippet and snippet in text]
    return min(found, key=lambda i: abs(i - line)) if found else line


def strip_statement(sql: str) -> str:
    return sql.strip().rstrip(";").rstrip()


def compile_sql(rendered: str, *, source: str, path: str, dialect: str = "duckdb",
                node_name: str | None = None, functions: FunctionContext | None = None,
                require_select: bool = True, transforms: Sequence[SqlTransform] = ()) -> str:
    """Check, transpile and apply ``transforms`` to one rendered statement; returns DuckDB SQL to run."""
    sql = strip_statement(rendered)
    dialect = (dialect or "duckdb").lower()
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError as exc:
        if dialect == "duckdb" and not _duckdb_parse_error(sql):
            if "ai_query" in sql.lower():
                _warn(path, "sqlglot cannot parse this model, so ai_query() is not rewritten and returns "
                            "VARCHAR (JSON text), not a typed STRUCT; avoid the DuckDB-only syntax here")
            return sql  # valid DuckDB that sqlglot does not know: run it as written
        raise _syntax_error(exc, sql, source, path, dialect) from None
    except SqlglotError as exc:
        raise CompileError(f"cannot parse SQL ({dialect}): {exc}", path=path) from None
    if tree is None:
        raise CompileError("the model is empty", path=path, hint="write a SELECT statement")
    before = tree.sql(dialect="duckdb") if dialect == "duckdb" else None
    context = TransformContext(dialect, node_name, path, functions)
    for transform in transforms:
        tree = transform(tree, context)
    if dialect == "duckdb":
        after = tree.sql(dialect="duckdb")
        result = sql if after == before else after
    else:
        try:
            result = tree.sql(dialect="duckdb", pretty=True)
        except SqlglotError as exc:
            raise CompileError(f"cannot transpile from {dialect} to DuckDB: {plain_parser_message(str(exc))}", path=path) from None
    if require_select:
        problem = _duckdb_parse_error(result)
        if problem:
            line = error_line(problem)
            raise CompileError(f"SQL error: {problem.splitlines()[0]}", path=path,
                               line=source_line(source, result, line) if line and dialect == "duckdb" else None,
                               hint="a model is one SELECT (or WITH ... SELECT) statement")
    return result


_SQLGLOT_TOKEN = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+.*?>")
_SQLGLOT_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")


def plain_parser_message(text: str) -> str:
    """sqlglot's message without its internals (token reprs, expression classes), in SQL words."""
    def token(match: re.Match) -> str:
        return "the end of the query" if match.group(1) == "SENTINEL" else f"'{match.group(2)}'"

    def missing(match: re.Match) -> str:
        clause = re.sub(r"(?<!^)(?=[A-Z])", " ", match.group(1)).upper()
        return f"{clause} is incomplete (something is missing after it)"

    return _SQLGLOT_MISSING.sub(missing, _SQLGLOT_TOKEN.sub(token, text))


def _syntax_error(exc: ParseError, sql: str, source: str, path: str, dialect: str) -> CompileError:
    first = exc.errors[0] if exc.errors else {}
    rendered_line = first.get("line")
    line = source_line(source, sql, rendered_line) if rendered_line else None
    description = plain_parser_message(first.get("description") or str(exc).splitlines()[0])
    near = (first.get("highlight") or "").strip()
    message = f"SQL syntax error ({dialect}): {description}" + (f" near '{near}'" if near else "")
    return CompileError(message, path=path, line=line, hint="fix the SQL on that line; "
                        "'sqlsynth compile -s <model>' shows the rendered SQL")


def inject_ctes(sql: str, ctes: list[tuple[str, str]]) -> str:
    """Prepend ephemeral models as CTEs, merging with a WITH the model already has."""
    if not ctes:
        return sql
    body = ",\n".join(f"{name} as (\n{strip_statement(cte)}\n)" for name, cte in ctes)
    match = re.match(r"^(\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*)with(\s+recursive)?\s", sql, re.I | re.S)
    if match:
        head = sql[:match.end()]
        return f"{head}{body},\n{sql[match.end():]}"
    return f"with {body}\n{sql}"


def ephemeral_name(node: Node) -> str:
    return f"__sqlsynth_eph_{node.name}"


class Compiler:
    """Renders nodes with real relations and turns them into runnable DuckDB SQL (cached per node)."""

    def __init__(self, project: Project, db: Database | None, full_refresh: bool = False):
        self.project = project
        self.db = db
        self.full_refresh = full_refresh
        self.compiled: dict[str, str] = {}
        self._ephemeral_deps: dict[str, list[str]] = {}
        self._inlined: dict[str, list[str]] = {}  # node -> ephemeral ancestors inlined as CTEs

    def is_incremental(self, node: Node) -> bool:
        if node.materialized != "incremental" or self.db is None:
            return False
        return incremental_target_exists(self.db, node, self.full_refresh)

    def _state(self, node: Node, ephemerals: list[str]):
        def resolve(name: str, _package: str | None) -> Any:
            target = self.project.find(name)
            if target is None:  # only an inline query gets here: a project file's refs are checked at load
                names = [n.name for n in self.project.by_type(*RELATION_TYPES)]
                raise RenderError(f"unknown ref '{name}'", hint=did_you_mean(name, names)
                                  or "run 'sqlsynth ls' to see the model and seed names")
            if target.materialized == "ephemeral" and target.resource_type == NodeType.MODEL:
                ephemerals.append(target.unique_id)
                return ephemeral_name(target)
            return target.relation
        state = self.project.render_state(node, resolve_ref=resolve, incremental=self.is_incremental(node))
        state.config = dict(node.config)
        return state

    def render(self, node: Node) -> tuple[str, list[str]]:
        ephemerals: list[str] = []
        state = self._state(node, ephemerals)
        if node.resource_type == NodeType.TEST and node.test_metadata is not None:
            sql = generic_test_sql(self.project, node, state)
        else:
            sql = self.project.renderer.render(node.original_file_path, node.raw_code, state)
        return sql, list(dict.fromkeys(ephemerals))

    def compile(self, node: Node) -> str:
        if node.unique_id in self.compiled:
            return self.compiled[node.unique_id]
        rendered, ephemerals = self.render(node)
        source = node.raw_code if node.test_metadata is None else rendered
        sql = self._compile_rendered(node, rendered, source)
        chain = self.cte_chain(ephemerals)
        sql = inject_ctes(sql, chain)
        self._inlined[node.unique_id] = [uid for uid in self._ephemeral_deps if ephemeral_name(
            self.project.nodes[uid]) in dict(chain)]
        self.compiled[node.unique_id] = sql
        node.compiled_code = sql
        return sql

    def _compile_rendered(self, node: Node, rendered: str, source: str) -> str:
        return compile_sql(rendered, source=source, path=node.original_file_path,
                           dialect=node.config.get("dialect", "duckdb"), node_name=node.name,
                           functions=self.db.functions if self.db else None,
                           transforms=registry().sql_transforms)

    def cte_chain(self, ephemerals: list[str]) -> list[tuple[str, str]]:
        """Ephemeral ancestors in dependency order, each compiled without its own CTE prefix."""
        ordered: list[str] = []

        def visit(uid: str) -> None:
            if uid in ordered:
                return
            node = self.project.nodes[uid]
            rendered, nested = self.render(node)
            for child in nested:
                visit(child)
            self._ephemeral_deps[uid] = nested
            ordered.append(uid)

        for uid in ephemerals:
            visit(uid)
        chain = []
        for uid in ordered:
            node = self.project.nodes[uid]
            chain.append((ephemeral_name(node), self.compiled_ephemeral(node)))
        return chain

    def blame(self, node: Node, compiled_line: int) -> tuple[Node, int]:
        """The file and line a line of the node's compiled SQL came from: an inlined ephemeral model's
        CTE is blamed on that model's file, not on the model that refs it."""
        compiled = self.compiled.get(node.unique_id, "")
        for uid in self._inlined.get(node.unique_id, []):
            ephemeral = self.project.nodes[uid]
            start = compiled.find(f"{ephemeral_name(ephemeral)} as (\n")
            if start < 0:
                continue
            first = compiled.count("\n", 0, start) + 2  # the CTE body starts on the line after "name as ("
            body = strip_statement(self.compiled_ephemeral(ephemeral))
            if first <= compiled_line < first + body.count("\n") + 1:
                return ephemeral, source_line(ephemeral.raw_code, body, compiled_line - first + 1)
        return node, source_line(node.raw_code, compiled, compiled_line)

    def compiled_ephemeral(self, node: Node) -> str:
        rendered, _ = self.render(node)
        return self._compile_rendered(node, rendered, node.raw_code)

    def write(self, node: Node) -> Path:
        path = self.project.target_dir / "compiled" / self.project.name / node.original_file_path
        if node.test_metadata is not None:
            path = path.parent / node.original_file_path.replace("/", "_") / f"{node.name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_text(mask(self.compiled[node.unique_id]) + "\n", encoding="utf-8")
        except OSError as exc:  # a failed write() names no file (disk full)
            exc.filename = exc.filename or str(path)
            raise
        return path
