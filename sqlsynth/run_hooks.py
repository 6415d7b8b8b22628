"""dbt's on-run-start / on-run-end: project-level SQL around seed, run, test and build."""

from __future__ import annotations

from typing import Any

from .config import PROJECT_FILE
from .errors import ExecutionError
from .project import Node, Project


def run_project_hooks(project: Project, compiler: Any, key: str) -> None:
    """Render each hook as Jinja (var, env_var, ref, macros) and run it; the first failure stops.

    key is "on_run_start" or "on_run_end"."""
    import duckdb

    name = key.replace("_", "-")
    for index, raw in enumerate(getattr(project.config, key), start=1):
        node = Node(f"operation.{project.config.name}.{key}.{index}", "operation", f"{key}_{index}",
                    PROJECT_FILE, raw_code=raw, config={"materialized": "ephemeral"})
        sql, _ephemerals = compiler.render(node)
        try:
            compiler.db.cursor().execute(sql)
        except duckdb.Error as exc:
            raise ExecutionError(f"{name} hook {index} failed: {str(exc).splitlines()[0]}", path=PROJECT_FILE,
                                 hint=f"fix or remove the {name} entry in {PROJECT_FILE}") from None
