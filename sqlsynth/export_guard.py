"""Where an `external` model may write: inside the project freely; outside it only when the model
says `allow_outside_project: true`, and never over a file that sqlsynth did not write itself.

What sqlsynth wrote outside the project is recorded (path, size, mtime) in the table
``sqlsynth.exports`` of the project's database; a file there that was since changed by someone else,
or one that was never recorded, is not replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError, SqlsynthError
from .project import Node

_TABLE = "sqlsynth.exports"


def is_outside(path: Path, project_dir: Path, target_dir: Path) -> bool:
    """Outside both the project folder and its target folder (which --target-path may put elsewhere)."""
    resolved = path.resolve()
    return not (resolved.is_relative_to(project_dir.resolve()) or resolved.is_relative_to(target_dir.resolve()))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _recorded(cur: Any, path: Path) -> tuple[int, int] | None:
    if not cur.execute("select 1 from information_schema.tables where table_schema = 'sqlsynth' "
                       "and table_name = 'exports'").fetchall():
        return None
    rows = cur.execute(f"select size, mtime_ns from {_TABLE} where path = ?", [str(path.resolve())]).fetchall()
    return tuple(rows[0]) if rows else None


def check_export_target(cur: Any, node: Node, path: Path, project_dir: Path, target_dir: Path) -> None:
    """Refuse a write outside the project without opt-in, or over a file sqlsynth did not write."""
    if not is_outside(path, project_dir, target_dir):
        return
    if node.config.get("allow_outside_project") is not True:
        raise ConfigError(f"location '{path}' is outside the project folder", path=node.original_file_path,
                          hint="set allow_outside_project=true in the model's config to write there on purpose")
    if path.exists() and _recorded(cur, path) != _stamp(path):
        raise SqlsynthError(f"'{path}' exists and was not written by sqlsynth (or was changed since); "
                            "refusing to replace it", path=node.original_file_path,
                            hint="move or delete that file, or choose another location")


def record_export(cur: Any, path: Path, project_dir: Path, target_dir: Path) -> None:
    """Remember a file written outside the project, so the next build may replace it."""
    if not is_outside(path, project_dir, target_dir):
        return
    cur.execute("create schema if not exists sqlsynth")
    cur.execute(f"create table if not exists {_TABLE} (path varchar primary key, size bigint, mtime_ns bigint)")
    cur.execute(f"insert or replace into {_TABLE} values (?, ?, ?)", [str(path.resolve()), *_stamp(path)])
