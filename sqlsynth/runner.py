"""Execute compiled nodes in DAG order, in parallel where the DAG allows."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .compile import Compiler, compiled_error_line
from .database import Database
from .datatests import run_test
from .dbt_compat import missing_source_note
from .errors import ExecutionError, SqlsynthError, runtime_message
from .extensions import registry
from .graph import Graph
from .materialize import BuildContext, materializers
from .node_types import OK_STATUSES, RELATION_TYPES, NodeType, Status
from .project import Node, Project
from .scheduler import Scheduler
from .seeds import load_seed
from .unit_tests import run_unit_test


@dataclass
class NodeResult:
    unique_id: str
    name: str
    resource_type: NodeType
    status: Status
    message: str = ""
    execution_time: float = 0.0
    rows_affected: int | None = None
    failures: int | None = None
    sample_columns: list[str] = field(default_factory=list)
    sample_rows: list[tuple] = field(default_factory=list)
    started_at: str | None = None
    completed_at: str | None = None
    materialized: str | None = None
    relation: str | None = None
    error_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES




def _row_errors(node_name: str) -> tuple[int, int]:
    """(values computed, values failed) that plugins counted for a node (ai_query with failOnError => false)."""
    counts = [count(node_name) for count in registry().row_errors]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class Runner:
    def __init__(self, project: Project, graph: Graph, db: Database, compiler: Compiler, *,
                 threads: int, reporter: Any, build_mode: bool = False, fail_on_ai_errors: bool = False):
        self.project, self.graph, self.db, self.compiler = project, graph, db, compiler
        self.fail_on_ai_errors = fail_on_ai_errors
        self.threads = max(1, threads)
        self.reporter = reporter
        self.build_mode = build_mode

    # -- one node ---------------------------------------------------------------------------------
    def run_node(self, uid: str) -> NodeResult:
        node = self.project.nodes[uid]
        result = NodeResult(uid, node.name, node.resource_type, Status.SUCCESS, started_at=_now(),
                            materialized=node.materialized if node.resource_type == NodeType.MODEL else None,
                            relation=str(node.relation) if node.resource_type in RELATION_TYPES else None)
        start = time.perf_counter()
        try:
            self._execute(node, result)
        except SqlsynthError as exc:
            result.status, result.message, result.error_path = Status.ERROR, exc.format(), exc.location
        except Exception as exc:  # DuckDB runtime errors and errors inside UDFs
            result.status = Status.ERROR
            result.message = self._runtime_message(node, exc)
        result.execution_time = time.perf_counter() - start
        result.completed_at = _now()
        return result

    def _execute(self, node: Node, result: NodeResult) -> None:
        if node.resource_type == NodeType.SEED:
            self.db.ensure_schema(node.schema)  # a seed's `+schema: raw` (dbt creates it too)
            outcome = load_seed(self.db, node)
            result.rows_affected, result.message = outcome.rows_affected, outcome.message
        elif node.resource_type == NodeType.MODEL:
            sql = self.compiler.compile(node)
            if node.materialized != "ephemeral":
                self.db.ensure_schema(node.schema)
            self._hooks(node, "pre_hook")
            ctx = BuildContext(self.db, node, sql, full_refresh=self.compiler.full_refresh,
                               post_hook=lambda: self._after_build(node))
            outcome = materializers()[node.materialized](ctx)
            if ctx.post_hook is not None:  # a materialization without a swap (ephemeral, a plugin's)
                ctx.post_hook()
            result.rows_affected, result.message = outcome.rows_affected, outcome.message
            self._note_row_errors(node, result)
        elif node.resource_type == NodeType.UNIT_TEST:
            unit = run_unit_test(self.project, self.db, node)
            result.status, result.failures, result.message = unit.status, unit.failures, unit.message
            result.sample_columns, result.sample_rows = unit.columns, unit.sample
        elif node.resource_type == NodeType.TEST:
            outcome = run_test(self.db.cursor(), node, self.compiler.compile(node))
            result.status, result.failures = outcome.status, outcome.failures
            result.sample_columns, result.sample_rows = outcome.columns, outcome.sample
            result.message = f"{outcome.failures:,} failing rows" if outcome.failures else "passed"

    def _after_build(self, node: Node) -> None:
        """Inside the swap's transaction: a failing post_hook, or rows that failed while failing is an
        error (--fail-on-ai-errors, config fail_on_ai_errors), undo the swap."""
        self._hooks(node, "post_hook")
        rows, errors = _row_errors(node.name)
        if errors and (self.fail_on_ai_errors or node.config.get("fail_on_ai_errors")):
            raise ExecutionError(f"ai_query failed for {errors:,} of {rows:,} values (failOnError => false); "
                                 "the previous table is kept", path=node.original_file_path,
                                 hint="see the errors in sqlsynth.calls; without --fail-on-ai-errors the model "
                                      "is built and the failed values are NULL")

    def _note_row_errors(self, node: Node, result: NodeResult) -> None:
        """Rows that failed without failing the model are counted on its line; all of them failing is a WARN."""
        rows, errors = _row_errors(node.name)
        if not errors:
            return
        result.message = f"{result.message}, {errors:,} errors" if result.message else f"{errors:,} errors"
        if errors >= rows:
            result.status = Status.WARN
            result.message += (f" ({node.original_file_path}: every ai_query value failed; "
                               "--fail-on-ai-errors makes this an error)")

    def _hooks(self, node: Node, key: str) -> None:
        hooks = node.config.get(key) or []
        for hook in [hooks] if isinstance(hooks, str) else hooks:
            self.db.cursor().execute(hook)

    def _runtime_message(self, node: Node, exc: Exception) -> str:
        # an error raised by a Python UDF (ai_query, corpus functions) reads as its own message
        text = runtime_message(exc)
        compiled = self.compiler.compiled.get(node.unique_id)
        compiled_line = compiled_error_line(text, compiled) if compiled and node.raw_code else None
        culprit, line = self.compiler.blame(node, compiled_line) if compiled_line else (node, None)
        location = f"{culprit.original_file_path}:{line}" if line else culprit.original_file_path
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"{location}: {first}{missing_source_note(self.project, node, first)}"

    # -- the DAG: the scheduler decides what is ready, this loop runs it on a thread pool --------------
    def execute(self, selected: list[str]) -> list[NodeResult]:
        schedule = Scheduler(self.graph, selected, build_mode=self.build_mode)
        results: dict[str, NodeResult] = {}

        def record(result: NodeResult) -> None:
            results[result.unique_id] = result
            self.reporter.node_done(len(results), len(selected), self.project.nodes[result.unique_id], result)

        def finish(result: NodeResult) -> None:
            record(result)
            for uid in schedule.finish(result.unique_id, blocking=not result.ok):
                record(self._skipped(uid, result))

        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="sqlsynth") as pool:
            running: dict[Any, str] = {}
            try:
                while schedule.has_ready() or running:
                    while len(running) < self.threads and (uid := schedule.pop_ready()) is not None:
                        self.reporter.node_start(self.project.nodes[uid])
                        running[pool.submit(self.run_node, uid)] = uid
                    if not running:
                        continue
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        finish(future.result())
            except KeyboardInterrupt:
                self._interrupt()
                raise
        return [results[uid] for uid in selected if uid in results]

    def _interrupt(self) -> None:
        """Ctrl-C: stop in-flight LLM batches (answers so far stay cached) and running statements."""
        for handler in registry().interrupt_handlers:
            handler()
        interrupt = getattr(self.db, "interrupt", None) or self.db.con.interrupt  # a plugin target's database
        interrupt()

    def _skipped(self, uid: str, cause: NodeResult) -> NodeResult:
        node = self.project.nodes[uid]
        return NodeResult(uid, node.name, node.resource_type, Status.SKIPPED,
                          message=f"skipped: upstream {cause.name} did not succeed")
