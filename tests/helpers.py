"""Library-level helpers for tests: run a command on a project and read tables back."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sqlsynth.api import Options, execute
from sqlsynth.run_progress import Reporter


def build(project: Path, command: str = "build", **options):
    return execute(command, Options(project_dir=project, **options), Reporter(quiet=True))


def query(project: Path, sql: str, database: str | None = None):
    path = project / (database or f"target/{project.name}.duckdb")
    con = duckdb.connect(str(path), read_only=True)
    # As the README tells SQL clients: export views name their files relative to the database's folder.
    con.execute("set file_search_path = ?", [str(path.parent)])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def statuses(report) -> dict[str, str]:
    return {r.name: r.status for r in report.results}
