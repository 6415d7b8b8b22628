"""The library behind each CLI command: load, select, compile, execute, write artifacts."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import serve
from .artifacts import write_manifest, write_run_results
from .compile import Compiler, close_parser, compile_sql, inject_ctes
from .database import Database, connect
from .errors import ExecutionError, SelectionError, SqlsynthError, did_you_mean, runtime_message
from .extensions import registry
from .graph import Graph, select
from .node_types import RELATION_TYPES, NodeType
from .project import Node, Project, load_project
from .run_hooks import run_project_hooks
from .runner import NodeResult, Runner
from .state import load_state
from .targets import resolve_target

COMMAND_TYPES = {
    "seed": (NodeType.SEED,),
    "run": (NodeType.MODEL,),
    "test": (NodeType.TEST, NodeType.UNIT_TEST),
    "build": (NodeType.SEED, NodeType.MODEL, NodeType.TEST, NodeType.UNIT_TEST),
    "compile": (NodeType.MODEL, NodeType.TEST),
}


@dataclass
class Options:
    project_dir: Path = Path(".")
    select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    full_refresh: bool = False
    threads: int | None = None
    target_path: str | None = None
    target_name: str | None = None
    only: list[str] | None = None  # unique_ids to keep from the selection (`sqlsynth retry`)
    state: Path | None = None  # an earlier run's artifacts, for state:/result: selectors (--state DIR)
    fail_on_ai_errors: bool = False  # a model with failed ai_query values is an ERROR, not OK/WARN
    serve: bool = False  # serve the database read-only to other clients while the run works (--serve)


@dataclass
class RunReport:
    command: str
    results: list[NodeResult]
    elapsed: float
    usage: dict[str, Any] | None = None  # LLM calls/tokens/cost (llm.usage.usage_summary), when available

    @property
    def success(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 1


def load(options: Options) -> tuple[Project, Graph]:
    project = load_project(options.project_dir, options.vars, options.target_name)
    if options.target_path:
        project.config.target_path = options.target_path
    project.target_name, project.target = resolve_target(project.config.targets, project.config.target,
                                                         options.target_name)
    if project.target.type == "duckdb" and project.target.database:
        project.config.database = project.target.database
    return project, Graph(project.nodes)


def _selected(project: Project, graph: Graph, options: Options, command: str) -> list[str]:
    if options.only is not None:
        # retry: the nodes that failed or were skipped, as dbt's retry, not the selection evaluated
        # again (state:modified+ no longer matches a node once its fix restored it to the --state copy)
        types = set(COMMAND_TYPES[command])
        return graph.topological({uid for uid in options.only
                                  if uid in graph.nodes and graph.nodes[uid].resource_type in types})
    return select(project, graph, options.select, options.exclude, COMMAND_TYPES[command],
                  load_state(options.state, options.project_dir))


def _run_summaries() -> dict[str, Any]:
    """What plugins add to run_results.json (ai_query: calls, cached, tokens, cost)."""
    return {key: summary() for key, summary in registry().run_summaries.items()}


@contextmanager
def _engine(project: Project, read_only: bool = False) -> Iterator[tuple[Any, type[Compiler], type[Runner]]]:
    """The chosen target's database handle, compiler and runner (DuckDB unless --target says else)."""
    if project.target.type == "duckdb":
        with Database(project, read_only=read_only) as db:
            yield db, Compiler, Runner
    elif read_only:  # compile: Spark SQL needs no session
        from .targets.spark_engine import SparkCompiler
        yield None, SparkCompiler, Runner
    else:
        from .targets.spark_engine import spark_engine
        with spark_engine(project) as engine:
            yield engine


def execute(command: str, options: Options, reporter: Any) -> RunReport:
    """seed / run / test / build: compile everything selected first, then run the DAG."""
    project, graph = load(options)
    selected = _selected(project, graph, options, command)  # before the manifest (--state may be target/)
    write_manifest(project, project.target_dir)
    for started in registry().run_started:
        started()  # e.g. ai_query's counters and max_calls budgets are per command
    start = time.perf_counter()
    with _engine(project) as (db, compiler_type, runner_type), \
            serve.during_run(db, project.config.serve, options.serve):
        compiler = compiler_type(project, db, full_refresh=options.full_refresh)
        try:
            for uid in selected:
                node = project.nodes[uid]
                if node.resource_type not in (NodeType.SEED, NodeType.UNIT_TEST):  # unit tests: on fixtures
                    compiler.compile(node)  # every syntax error surfaces before anything runs
            runner = runner_type(project, graph, db, compiler, threads=options.threads or project.config.threads,
                                 reporter=reporter, build_mode=command == "build",
                                 fail_on_ai_errors=options.fail_on_ai_errors)
            run_project_hooks(project, compiler, "on_run_start")
            results = runner.execute(selected)
            end_error = _hooks_error(project, compiler, "on_run_end")  # raised once the results are written
        finally:
            close_parser()
        for uid in selected:
            if uid in compiler.compiled:
                compiler.write(project.nodes[uid])
    elapsed = time.perf_counter() - start
    for finished in registry().run_finished:
        finished()
    write_manifest(project, project.target_dir)
    extra = _run_summaries()
    write_run_results(project, project.target_dir, command, results, elapsed,
                      {"select": options.select, "exclude": options.exclude, "vars": options.vars,
                       "full_refresh": options.full_refresh,
                       "state": str(options.state) if options.state else None,
                       "fail_on_ai_errors": options.fail_on_ai_errors}, extra)
    if end_error is not None:
        raise end_error
    return RunReport(command, results, elapsed, extra.get("usage"))


def _hooks_error(project: Project, compiler: Compiler, key: str) -> ExecutionError | None:
    try:
        run_project_hooks(project, compiler, key)
    except ExecutionError as exc:
        return exc
    return None


def compile_nodes(options: Options) -> list[tuple[Node, str, Path]]:
    project, graph = load(options)
    selected = _selected(project, graph, options, "compile")
    out = []
    with _engine(project, read_only=True) as (db, compiler_type, _runner):
        compiler = compiler_type(project, db, full_refresh=options.full_refresh)
        try:
            for uid in selected:
                node = project.nodes[uid]
                sql = compiler.compile(node)
                out.append((node, sql, compiler.write(node)))
        finally:
            close_parser()
    write_manifest(project, project.target_dir)
    return out


def show(options: Options, target: str, limit: int) -> tuple[list[str], list[tuple]]:
    """Preview a model/seed by name, or an ad-hoc query (Jinja allowed: {{ ref('x') }}).

    A query without ai_query opens the file read-only, so it runs beside SQL clients that hold it open;
    one that calls the LLM needs write access (the call cache and log live in the file)."""
    project, _graph = load(options)
    node = project.find(target, ("model", "seed"))
    with Database(project, read_only=True) as db:
        sql = _show_sql(project, db, node, target)
        if db.read_only and not _LLM_CALL.search(sql):
            return _preview(project, db, sql, node, target, limit)
    with Database(project) as db:
        return _preview(project, db, _show_sql(project, db, node, target), node, target, limit)


_LLM_CALL = re.compile(r"ai_query\s*\(", re.IGNORECASE)  # also the rewritten sqlsynth_ai_query(


def _show_sql(project: Project, db: Database, node: Node | None, target: str) -> str:
    compiler = Compiler(project, db)
    try:
        if node is not None and node.materialized != "ephemeral":
            return f"select * from {node.relation}"
        if node is None and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)?", target.strip()):
            return f"select * from {target.strip()}"  # a relation that is not a node (disabled, sqlsynth.cache)
        return compiler.compile(node) if node is not None else _inline_sql(project, compiler, target)
    finally:
        close_parser()


def _preview(project: Project, db: Database, sql: str, node: Node | None, target: str,
             limit: int) -> tuple[list[str], list[tuple]]:
    import duckdb

    try:
        result = db.cursor().execute(f"select * from (\n{sql}\n) as sqlsynth_show limit {int(limit)}")
        return [d[0] for d in result.description], result.fetchall()
    except duckdb.CatalogException as exc:
        raise _not_there(project, node, target, sql, str(exc)) or _preview_error(exc, node) from None
    except duckdb.Error as exc:
        raise _preview_error(exc, node) from None


def _preview_error(exc: Exception, node: Node | None) -> ExecutionError:
    where = node.original_file_path if node is not None else "<inline>"
    return ExecutionError(runtime_message(exc).splitlines()[0], path=where)


def _not_there(project: Project, node: Node | None, target: str, sql: str, error: str) -> SqlsynthError | None:
    """`show NAME` of a model not built yet, or of a name that is no node nor relation: say which (not
    when the relation exists and the missing one is another, e.g. a view's dropped parent)."""
    if node is not None and sql == f"select * from {node.relation}" and f" {node.alias} does not exist" in error:
        return ExecutionError(f"{node.resource_type} '{node.name}' is not built yet", path=node.original_file_path,
                              hint=f"run 'sqlsynth build -s {node.name}' first (show previews the built relation)")
    if node is None and sql == f"select * from {target.strip()}" and \
            f" {target.strip().split('.')[-1]} does not exist" in error:
        names = [n.name for n in project.by_type(*RELATION_TYPES)]
        return SelectionError(f"no model, seed or relation named '{target.strip()}'",
                              hint=did_you_mean(target.strip(), names) or "run 'sqlsynth ls' to see the names")
    return None


def compile_inline(options: Options, text: str) -> str:
    """`sqlsynth compile --inline "sql"`: the SQL an ad-hoc query runs (refs resolved, ephemerals inlined)."""
    project, _graph = load(options)
    with Database(project, read_only=True) as db:
        try:
            return _inline_sql(project, Compiler(project, db), text)
        finally:
            close_parser()


def _inline_sql(project: Project, compiler: Compiler, text: str) -> str:
    node = Node("sql_operation.inline", "sql_operation", "inline", "<inline>", raw_code=text)
    node.config = {"materialized": "ephemeral"}
    rendered, ephemerals = compiler.render(node)
    sql = compile_sql(rendered, source=text, path="<inline>", node_name="inline", functions=compiler.db.functions,
                      transforms=registry().sql_transforms)
    return inject_ctes(sql, compiler.cte_chain(ephemerals))


def plan(options: Options) -> list[Any]:
    """`sqlsynth plan`: the selected models that call ai_query, dry-run against the project database
    (no LLM is called); one llm.plan.PlanRow per model and endpoint."""
    from .llm.plan import plan_queries
    from .llm.transform import UDF_NAME

    project, graph = load(options)
    selected = _selected(project, graph, options, "run")
    with Database(project, read_only=True) as db:
        compiler = Compiler(project, db)
        try:
            queries = []
            for uid in selected:
                node = project.nodes[uid]
                if node.resource_type == NodeType.MODEL:
                    sql = compiler.compile(node)
                    if UDF_NAME in sql.lower():
                        queries.append((node.name, sql))
        finally:
            close_parser()
        return plan_queries(db.con, queries)


def list_nodes(options: Options, resource_types: tuple[str, ...]) -> list[Node]:
    return list_project_nodes(options, resource_types)[1]


def list_project_nodes(options: Options, resource_types: tuple[str, ...]) -> tuple[Project, list[Node]]:
    """The nodes a selection matches, with the project they belong to (`ls`)."""
    project, graph = load(options)
    uids = select(project, graph, options.select, options.exclude, resource_types,
                  load_state(options.state, options.project_dir))
    write_manifest(project, project.target_dir)
    return project, [project.nodes[uid] for uid in uids]


def clean(project_dir: Path, include_database: bool = False) -> list[Path]:
    """Remove target/ (compiled SQL, exports, artifacts). The DuckDB file, which also holds the
    LLM cache, is kept unless include_database is set."""
    from .config import load_project_config

    config = load_project_config(project_dir.resolve())
    root = project_dir.resolve()
    database = (root / (config.database or f"{config.target_path}/{config.name}.duckdb")).resolve()
    # the database holds the LLM cache; target/chroma the embeddings: both cost to rebuild
    keep = set() if include_database else {database, database.with_name(database.name + ".wal"),
                                           (root / config.target_path / "chroma").resolve()}
    # a running build holds the database's write lock: taking it here makes clean refuse
    # ("locked by process N (command)") instead of deleting files under a build that then reports success
    held = connect(database) if database.exists() else None
    database_files = {database, database.with_name(database.name + ".wal")}
    removed: list[Path] = []
    pending: list[Path] = []
    try:
        for name in config.clean_targets or [config.target_path]:
            folder = (root / name).resolve()
            if not folder.exists() or not folder.is_relative_to(root) or folder == root:
                continue
            for item in sorted(folder.iterdir()):
                if item.resolve() in keep:
                    continue
                if item.resolve() in database_files:  # deleted below, once the lock is let go
                    pending.append(item)
                    continue
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
                removed.append(item)
    finally:
        if held is not None:
            held.close()
    for item in pending:
        item.unlink(missing_ok=True)
        removed.append(item)
    for name in config.clean_targets or [config.target_path]:
        folder = (root / name).resolve()
        if folder.is_dir() and folder.is_relative_to(root) and folder != root and not any(folder.iterdir()):
            folder.rmdir()
    return removed



def report(options: Options, metrics: str | None, examples: str | None, training_summary: Path | None,
           out_dir: Path | None) -> Path:
    """Write target/report/index.html from the metrics/examples relations and a training summary."""
    from .html_report import training_summary_path
    from .report_overview import any_report

    project, _graph = load(options)
    with Database(project, read_only=True) as db:
        return any_report(project, db, metrics, examples, training_summary_path(project, training_summary),
                          out_dir or project.target_dir / "report")
