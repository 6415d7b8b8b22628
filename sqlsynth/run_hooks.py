"""dbt's on-run-start / on-run-end: project-level SQL around seed, run, test and build."""

from __future__ import annotations

from typing import Any

from .config import PROJECT_FILE
from .errors import ExecutionError, RenderError
from .project import Node, Project


def run_project_hooks(project: Project, compiler: Any, key: str) -> None:
    """Render each hook as Jinja (var, env_var, ref, macros, invocation_id) and run it; the first
    failure stops. key is "on_run_start" or "on_run_end".

    A hook that does not render is an error naming the hook (its line inside the hook text would point
    at the wrong line of project.yml): exit 2 before the run, an ExecutionError (exit 1, results
    written) after it, since the nodes did run."""
    import duckdb

    name = key.replace("_", "-")
    hint = f"fix or remove the {name} entry in {PROJECT_FILE}"
    for index, raw in enumerate(getattr(project.config, key), start=1):
        node = Node(f"operation.{project.config.name}.{key}.{index}", "operation", f"{key}_{index}",
                    PROJECT_FILE, raw_code=raw, config={"materialized": "ephemeral"})
        try:
            sql, _ephemerals = compiler.render(node)
        except RenderError as exc:
            error = RenderError if key == "on_run_start" else ExecutionError
            raise error(f"{name} hook {index} does not render: {exc.message}", path=PROJECT_FILE,
                        hint=exc.hint or hint) from None
        try:
            compiler.db.cursor().execute(sql)
        except duckdb.Error as exc:
            raise ExecutionError(f"{name} hook {index} failed: {str(exc).splitlines()[0]}", path=PROJECT_FILE,
                                 hint=hint) from None
