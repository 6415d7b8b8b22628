"""Run a project on Spark: the same nodes, selection, tests and artifacts as on DuckDB.

SparkDatabase gives the runner what sqlsynth.database.Database gives it (cursor(), relation_type(),
ensure_schema()), so the DAG runner, data tests and artifacts are shared; models are compiled to Spark
SQL (spark_sql.py), materialized by spark_materialize.py, seeds loaded through Arrow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..compile import Compiler
from ..datatests import run_test
from ..dbt_compat import missing_source_note
from ..errors import CompileError
from ..node_types import RELATION_TYPES, NodeType
from ..project import Node, Project
from ..runner import NodeResult, Runner
from ..unit_tests import run_unit_test
from .databricks_native import native_endpoints
from .spark_ai_plan import AIStage, describe, plan_ai_queries
from .spark_ai_query import run_stages
from .spark_database import SparkDatabase, java_error
from .spark_materialize import MATERIALIZERS, incremental_strategy, load_seed
from .spark_sql import PYTHON_FUNCTIONS, to_spark_sql
from .spark_udfs import python_error, register_python_functions

SUPPORTED_MATERIALIZATIONS = ("view", "table", "ephemeral", "incremental", "external")
# Python functions are session functions on Spark: a persistent view (view, external) cannot call them
PERSISTENT_VIEWS = ("view", "external")


class SparkCompiler(Compiler):
    """Renders like the DuckDB compiler, then produces the Spark SQL that will run."""

    def __init__(self, project: Project, db: SparkDatabase | None, full_refresh: bool = False):
        super().__init__(project, db, full_refresh)  # type: ignore[arg-type]  # the runner's db interface
        self._relations = sorted({str(n.relation) for n in project.nodes.values()
                                  if n.resource_type in RELATION_TYPES}, key=len, reverse=True)
        self._python = {spec.name.lower() for spec in project.udfs} | set(PYTHON_FUNCTIONS)
        self._native = native_endpoints(project)
        self.ai_stages: dict[str, list[AIStage]] = {}

    def _compile_rendered(self, node: Node, rendered: str, source: str) -> str:
        """The shared compile()/cte_chain() call this to turn one rendered node into runnable SQL."""
        if node.resource_type == NodeType.MODEL and node.materialized == "vector_index":
            raise CompileError(f"model '{node.name}': materialized='vector_index' is single-machine in this "
                               "release and cannot be built on Spark", path=node.original_file_path,
                               hint="build the vector index (and the models that call retrieve()) with "
                                    "--target duckdb; select around it with --exclude")
        if node.resource_type == NodeType.MODEL and node.materialized not in SUPPORTED_MATERIALIZATIONS:
            raise CompileError(f"model '{node.name}': materialized='{node.materialized}' is not "
                               "implemented on Spark yet", path=node.original_file_path,
                               hint=f"use one of {', '.join(SUPPORTED_MATERIALIZATIONS)} or --target duckdb")
        if node.resource_type == NodeType.MODEL and node.materialized == "incremental":
            incremental_strategy(node, getattr(self.project.target, "table_format", "parquet"))
        dialect = str(node.config.get("dialect") or "duckdb").lower()
        staged = node.resource_type == NodeType.MODEL and node.materialized in ("table", "incremental")
        planner = _AIPlanner(self.project, node, self.ai_stages) if staged else None
        python = self._python if node.materialized in PERSISTENT_VIEWS else frozenset()
        sql = to_spark_sql(rendered, node, dialect, self._relations, python, self._native, planner)
        return describe(self.ai_stages.get(node.unique_id, [])) + sql


class _AIPlanner:
    """Collects a model's staged ai_query calls for the runner (see spark_ai_plan.py)."""

    def __init__(self, project: Project, node: Node, stages: dict[str, list[AIStage]]):
        self.project, self.node, self.stages = project, node, stages

    def plan(self, tree: Any, node: Node, dialect: str) -> Any:
        tree, stages = plan_ai_queries(tree, node, self.project.config, self.project.pydantic_models, dialect)
        self.stages[node.unique_id] = stages
        return tree


class SparkRunner(Runner):
    def _execute(self, node: Node, result: NodeResult) -> None:
        if node.resource_type == NodeType.SEED:
            self.db.ensure_schema(node.schema)  # a seed's `+schema: raw` (dbt creates it too)
            result.rows_affected = load_seed(self.db, node)
            result.message = f"{result.rows_affected:,} rows"
        elif node.resource_type == NodeType.MODEL:
            sql = self.compiler.compile(node)
            if node.materialized != "ephemeral":
                self.db.ensure_schema(node.schema)
            self._hooks(node, "pre_hook")
            run_stages(self.db, self.compiler.ai_stages.get(node.unique_id, []))
            self.db.full_refresh = self.compiler.full_refresh
            result.rows_affected, result.message = MATERIALIZERS[node.materialized](self.db, node, sql)
            self._hooks(node, "post_hook")
        elif node.resource_type == NodeType.UNIT_TEST:
            # the model's logic on the given rows, in memory (DuckDB, as on --target duckdb), with the
            # column types of the Spark relations; without this branch it counted as OK, never run
            unit = run_unit_test(self.project, self.db, node)
            result.status, result.failures, result.message = unit.status, unit.failures, unit.message
        elif node.resource_type == NodeType.TEST:
            outcome = run_test(self.db.cursor(), node, self.compiler.compile(node))
            result.status, result.failures = outcome.status, outcome.failures
            result.sample_columns, result.sample_rows = outcome.columns, outcome.sample
            result.message = f"{outcome.failures:,} failing rows" if outcome.failures else "passed"

    def _runtime_message(self, node: Node, exc: Exception) -> str:
        text = str(exc).strip()
        first = python_error(text) or java_error(text) or (text.splitlines()[0] if text else type(exc).__name__)
        return f"{node.original_file_path}: {first[:500]}{missing_source_note(self.project, node, first)}"

    def _interrupt(self) -> None:
        self.db.interrupt()


@contextmanager
def spark_engine(project: Project) -> Iterator[tuple[SparkDatabase, type[Compiler], type[Runner]]]:
    """The Spark counterpart of `with Database(project)`: a live session for the chosen target."""
    from .spark_session import open_session

    spark = open_session(project.target_name, project.target, project.target_dir / "spark")
    register_python_functions(spark, project, connect=not project.target.remote.startswith("local")
                              if project.target.type == "spark" else True)
    yield SparkDatabase(project, spark), SparkCompiler, SparkRunner
