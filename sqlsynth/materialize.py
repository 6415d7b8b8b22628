"""How each materialization turns compiled SQL into a relation.

Every materialization that replaces data builds it under a temporary name first and swaps it in
inside one transaction, so a failing build leaves the previous relation exactly as it was.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contracts import enforce_contract
from .errors import ConfigError, SqlsynthError, did_you_mean
from .export_guard import check_export_target, record_export
from .extensions import registry
from .identifiers import quote, relation
from .masking import contains_secret
from .project import Node

INCREMENTAL_STRATEGIES = ("append", "delete+insert", "merge")
EXPORT_FORMATS = {"jsonl": "json", "json": "json", "ndjson": "json", "parquet": "parquet", "csv": "csv"}


@dataclass
class BuildContext:
    db: Any  # sqlsynth.database.Database
    node: Node
    sql: str
    full_refresh: bool = False
    # the model's post_hook: run inside the swap's transaction, so a failing hook undoes the swap
    post_hook: Callable[[], None] | None = None

    def swap(self, statements: Callable[[], Any]) -> Any:
        """Run the statements that replace the relation, then the post_hook, as one transaction."""
        from .llm.runtime import ai_query_statement

        hook, self.post_hook = self.post_hook, None  # runs once, with the first (only) swap
        # ai_query runs on this thread, not on a DuckDB worker while this one spins (llm/runtime.py)
        with ai_query_statement(self.db, self.cur, "ai_query(" in self.sql.lower()):
            return in_transaction(self.cur, statements, then=hook)

    @property
    def cur(self) -> Any:
        return self.db.cursor()


@dataclass
class BuildResult:
    rows_affected: int | None
    message: str


def _temp_name(node: Node) -> str:
    return f"{node.alias}__sqlsynth_tmp"


def _drop(cur: Any, schema: str, name: str, kind: str | None) -> None:
    if kind:
        cur.execute(f"drop {'view' if kind == 'view' else 'table'} if exists {relation(schema, name)}")


def in_transaction(cur: Any, statements: Callable[[], Any], then: Callable[[], None] | None = None) -> Any:
    cur.execute("begin transaction")
    try:
        result = statements()
        if then is not None:
            then()
    except BaseException:
        cur.execute("rollback")
        raise
    cur.execute("commit")
    return result


def _count(cur: Any, rel: str) -> int:
    return cur.execute(f"select count(*) from {rel}").fetchall()[0][0]


def build_view(ctx: BuildContext) -> BuildResult:
    node, cur = ctx.node, ctx.cur
    if contains_secret(ctx.sql):  # a view's SQL is stored in the database file, readable by anyone
        raise ConfigError("this view's SQL holds a secret (an env_var(..., secret=true) value, a key or a URL "
                          "with credentials), and a view's SQL is stored in the database file",
                          path=node.original_file_path,
                          hint="materialize it as a table (config(materialized='table')): only its rows are stored")
    existing = ctx.db.relation_type(node.schema, node.alias)

    def swap() -> None:
        enforce_contract(cur, node, f"(\n{ctx.sql}\n)")
        if existing == "table":
            _drop(cur, node.schema, node.alias, "table")
        cur.execute(f"create or replace view {node.relation} as\n{ctx.sql}")

    ctx.swap(swap)
    if "sqlsynth_ai_query" in ctx.sql or "ai_query(" in ctx.sql:
        # the view stores a Python function: other SQL clients cannot read it, and every read calls it
        return BuildResult(None, "view — warning: it calls ai_query, materialize it as a table")
    return BuildResult(None, "view")


def build_table_from(ctx: BuildContext, select_sql: str) -> int:
    node, cur = ctx.node, ctx.cur
    tmp = relation(node.schema, _temp_name(node))
    existing = ctx.db.relation_type(node.schema, node.alias)

    def swap() -> int:
        cur.execute(f"create or replace table {tmp} as\n{select_sql}")
        enforce_contract(cur, node, tmp)  # on the table built aside: a mismatch keeps the old one
        _drop(cur, node.schema, node.alias, existing)
        cur.execute(f"alter table {tmp} rename to {quote(node.alias)}")
        return _count(cur, node.relation.render())

    return ctx.swap(swap)


def build_table(ctx: BuildContext) -> BuildResult:
    rows = build_table_from(ctx, ctx.sql)
    return BuildResult(rows, f"{rows:,} rows")


def _unique_key(node: Node) -> list[str]:
    key = node.config.get("unique_key")
    if key is None:
        return []
    return [key] if isinstance(key, str) else list(key)


def _strategy(node: Node) -> str:
    key = _unique_key(node)
    strategy = node.config.get("incremental_strategy") or ("merge" if key else "append")
    if strategy not in INCREMENTAL_STRATEGIES:
        raise ConfigError(f"unknown incremental_strategy '{strategy}'", path=node.original_file_path,
                          hint=f"use one of: {', '.join(INCREMENTAL_STRATEGIES)}")
    if strategy in ("delete+insert", "merge") and not key:
        raise ConfigError(f"incremental_strategy '{strategy}' needs a unique_key", path=node.original_file_path,
                          hint="add unique_key='id' (or a list of columns) to config()")
    return strategy


def incremental_target_exists(db: Any, node: Node, full_refresh: bool) -> bool:
    """is_incremental(): the table exists, is a table, and no --full-refresh was asked for."""
    if full_refresh and node.config.get("full_refresh") is not False:
        return False
    return db.relation_type(node.schema, node.alias) == "table"


def build_incremental(ctx: BuildContext) -> BuildResult:
    node, cur = ctx.node, ctx.cur
    strategy = _strategy(node)
    if not incremental_target_exists(ctx.db, node, ctx.full_refresh):
        rows = build_table_from(ctx, ctx.sql)
        return BuildResult(rows, f"{rows:,} rows (full build)")
    target = node.relation.render()
    keys = _unique_key(node)
    match = " and ".join(f"target.{quote(k)} is not distinct from source.{quote(k)}" for k in keys)

    def apply() -> int:
        cur.execute(f"create or replace temp table {quote(_temp_name(node))} as\n{ctx.sql}")
        temp = quote(_temp_name(node))
        enforce_contract(cur, node, temp)
        columns = [row[0] for row in cur.execute(f"select * from {temp} limit 0").description]
        _check_unique_key(ctx, keys, columns)
        _sync_columns_temp(ctx, columns)
        names = ", ".join(quote(c) for c in columns)
        if strategy == "delete+insert":
            cur.execute(f"delete from {target} as target where exists "
                        f"(select 1 from {temp} as source where {match})")
        if strategy == "merge":
            updates = ", ".join(f"{quote(c)} = source.{quote(c)}" for c in columns if c not in keys)
            matched = f"when matched then update set {updates} " if updates else ""
            result = cur.execute(
                f"merge into {target} as target using {temp} as source on ({match}) "
                f"{matched}when not matched then insert ({names}) values "
                f"({', '.join('source.' + quote(c) for c in columns)})").fetchall()
        else:
            result = cur.execute(f"insert into {target} ({names}) select {names} from {temp}").fetchall()
        cur.execute(f"drop table {temp}")
        return int(result[0][0]) if result else 0

    rows = ctx.swap(apply)
    return BuildResult(rows, f"{rows:,} rows {strategy}")


def _check_unique_key(ctx: BuildContext, keys: list[str], columns: list[str]) -> None:
    """Name the model and column (not the merge's internal target/source aliases) when a key is missing."""
    existing = {name for name, _ in ctx.db.columns(ctx.node.schema, ctx.node.alias)}
    for key in keys:
        if key not in columns or key not in existing:
            where = "the model's query" if key not in columns else f"the existing table {ctx.node.relation}"
            raise ConfigError(f"unique_key '{key}' of model {ctx.node.name} is not a column of {where}",
                              path=ctx.node.original_file_path,
                              hint=did_you_mean(key, columns) or f"use one of its columns: {', '.join(columns)}")


def _sync_columns_temp(ctx: BuildContext, columns: list[str]) -> None:
    node, cur = ctx.node, ctx.cur
    existing = {name for name, _ in ctx.db.columns(node.schema, node.alias)}
    new = [c for c in columns if c not in existing]
    policy = node.config.get("on_schema_change", "ignore")
    if not new:
        return
    if policy == "fail":
        raise SqlsynthError(f"the model now has columns {new} that the existing table lacks",
                            path=node.original_file_path,
                            hint="run with --full-refresh, or set on_schema_change='append_new_columns'")
    if policy in ("append_new_columns", "sync_all_columns"):
        described = cur.execute(f"describe {quote(_temp_name(node))}").fetchall()
        kinds = {row[0]: row[1] for row in described}
        for name in new:
            cur.execute(f"alter table {node.relation} add column {quote(name)} {kinds[name]}")
    else:  # ignore: insert only the columns the table has
        columns[:] = [c for c in columns if c in existing]


def export_path(ctx_node: Node, project_dir: Path, target_dir: Path) -> tuple[Path, str]:
    """Where an external model writes, and in which format."""
    location = ctx_node.config.get("location")
    fmt = ctx_node.config.get("format")
    if location:
        path = Path(location)
        path = path if path.is_absolute() else project_dir / path
    else:
        path = target_dir / "exports" / f"{ctx_node.alias}.{fmt or 'parquet'}"
    fmt = (fmt or path.suffix.lstrip(".") or "parquet").lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'", path=ctx_node.original_file_path,
                          hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    return path, fmt


def _reader(path: Path, fmt: str) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    kind = EXPORT_FORMATS[fmt]
    if kind == "json":
        return f"read_json({literal}, format = 'newline_delimited')"
    if kind == "csv":
        return f"read_csv({literal}, header = true)"
    return f"read_parquet({literal})"


def _view_path(path: Path, database: Path) -> Path:
    """The file as the view names it: relative to the database's folder (connect() adds that folder to
    DuckDB's file_search_path), so moving the project folder keeps the view working."""
    return Path(os.path.relpath(path.resolve(), database.resolve().parent))


def _same_content(a: Path, b: Path) -> bool:
    if not b.exists() or a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def build_external(ctx: BuildContext) -> BuildResult:
    """COPY the query to a file (written aside, then renamed) and expose it as a view over the file."""
    node, cur = ctx.node, ctx.cur
    db = ctx.db
    path, fmt = export_path(node, db.project.dir, db.project.target_dir)
    check_export_target(cur, node, path, db.project.dir, db.project.target_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp")
    options = {"json": "format json", "parquet": "format parquet", "csv": "format csv, header true"}
    literal = "'" + str(tmp_path).replace("'", "''") + "'"
    try:
        result = cur.execute(f"copy (\n{ctx.sql}\n) to {literal} ({options[EXPORT_FORMATS[fmt]]})").fetchall()
        if not _same_content(tmp_path, path):  # unchanged exports keep their mtime (make, trainers)
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    rows = int(result[0][0]) if result else 0
    existing = db.relation_type(node.schema, node.alias)

    def swap() -> None:
        record_export(cur, path, db.project.dir, db.project.target_dir)
        if existing == "table":
            _drop(cur, node.schema, node.alias, "table")
        if rows:
            reader = _reader(_view_path(path, db.path), fmt)
            cur.execute(f"create or replace view {node.relation} as select * from {reader}")
        else:  # an empty file has no schema to read back: keep the query's columns
            cur.execute(f"create or replace view {node.relation} as select * from (\n{ctx.sql}\n) limit 0")

    ctx.swap(swap)
    shown = os.path.relpath(path, db.project.dir) if path.is_relative_to(db.project.dir) else str(path)
    return BuildResult(rows, f"{rows:,} rows → {shown}")


def build_ephemeral(ctx: BuildContext) -> BuildResult:
    return BuildResult(None, "ephemeral (inlined as a CTE)")


MATERIALIZERS: dict[str, Callable[[BuildContext], BuildResult]] = {
    "view": build_view,
    "table": build_table,
    "incremental": build_incremental,
    "external": build_external,
    "ephemeral": build_ephemeral,
}


def materializers() -> dict[str, Callable[[BuildContext], BuildResult]]:
    """The engine's materializations plus those plugins register (sqlsynth.extensions), each inside the
    plugins' build preparers."""
    builders = {**MATERIALIZERS, **registry().materializations}
    return {name: functools.partial(_prepared_build, builder) for name, builder in builders.items()}


def _prepared_build(builder: Callable[[BuildContext], BuildResult], ctx: BuildContext) -> BuildResult:
    with contextlib.ExitStack() as stack:
        for prepare in registry().build_preparers:
            stack.enter_context(prepare(ctx))
        return builder(ctx)
