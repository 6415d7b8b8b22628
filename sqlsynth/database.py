"""The DuckDB file: open it (explaining lock conflicts), register functions, close it cleanly."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .config import PROJECT_FILE
from .errors import ConfigError, DatabaseLockedError, SqlsynthError
from .identifiers import quote
from .project import Project
from .python_udfs import FunctionContext, register_all

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>\S+) \(PID (?P<pid>\d+)\)")


def _process_command(pid: str) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None


def locked_error(path: Path, message: str) -> DatabaseLockedError:
    match = _LOCK_HOLDER.search(message)
    who = "another process"
    if match:
        command = _process_command(match.group("pid"))
        who = f"process {match.group('pid')} ({command or match.group('exe')})"
    return DatabaseLockedError(f"the database is locked by {who}", path=str(path),
                               hint="close that program (a SQL client or another sqlsynth run) and try again; "
                                    "SQL clients can open the file with read-only access while no run is going")


def _io_hint(message: str) -> str | None:
    lowered = message.lower()
    if "read-only" in lowered or "permission denied" in lowered:
        return ("the database file or its folder is not writable: make it writable, or set database: in "
                "project.yml to a writable path (show, ls and compile still work)")
    if "no space left" in lowered:
        return "free disk space on that file system and re-run; the database keeps what was committed"
    return None


def connect(path: Path, read_only: bool = False, storage_version: str | None = None) -> Any:
    """Open the database file. A new file is written in ``storage_version``'s format (older clients read
    it); relative paths in SQL (the export views) also resolve against the file's folder."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"storage_compatibility_version": storage_version} if storage_version and not read_only else {}
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise locked_error(path, str(exc)) from None
        raise SqlsynthError(f"cannot open database: {exc}", path=str(path), hint=_io_hint(str(exc))) from None
    except duckdb.Error as exc:
        raise SqlsynthError(f"cannot open database: {str(exc).splitlines()[0].split(', valid options')[0]}", path=str(path),
                            hint="check storage_compatibility_version in project.yml (e.g. v1.4.0 or latest)") from None
    con.execute("set global file_search_path = ?", [str(path.parent.resolve())])
    if storage_version and not read_only:
        _warn_newer_storage(con, path, storage_version)
    return con


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _warn_newer_storage(con: Any, path: Path, wanted: str) -> None:
    """An existing file keeps the format it was created in: say so when older clients cannot read it."""
    if wanted == "latest":
        return
    rows = con.execute("select tags['storage_version'] from duckdb_databases() "
                       "where database_name = current_database()").fetchall()
    written = rows[0][0] if rows and rows[0][0] else None
    if written and _version(written) > _version(wanted):
        from .console import console

        console.print(f"[yellow]warning[/yellow] {path}: written in DuckDB storage format {written.rstrip('+')}, "
                      f"newer than storage_compatibility_version {wanted}, so older DuckDB clients cannot open "
                      "it; `sqlsynth clean --include-database` and a rebuild rewrite it (the LLM cache is lost)",
                      highlight=False)


class Database:
    """One DuckDB connection per command; worker threads use cursors of it."""

    def __init__(self, project: Project, read_only: bool = False):
        self.project = project
        self.path = project.database_path
        self.read_only = read_only and self.path.exists()
        self.con = connect(self.path, read_only=self.read_only,
                           storage_version=project.config.storage_compatibility_version) \
            if (self.path.exists() or not read_only) else connect_memory()
        self.functions = FunctionContext(project.dir, project.config, project.target_dir, self.path,
                                         project.pydantic_models)
        self._local = threading.local()
        self._cursors: list[Any] = []
        self._lock = threading.Lock()
        self._schema_lock = threading.Lock()
        try:
            self._apply_memory_limit(project.config.memory_limit)
            register_all(self.con, project.udfs, self.functions)
        except BaseException as exc:
            self.close()
            if project.config.memory_limit and type(exc).__name__ == "OutOfMemoryException":
                raise ConfigError(f"DuckDB ran out of memory at once: memory_limit: {project.config.memory_limit} "
                                  "is too small to open the project", path=PROJECT_FILE,
                                  hint="raise memory_limit (e.g. 2GB) or remove it") from None
            raise

    def _apply_memory_limit(self, limit: str | None) -> None:
        if limit:  # project.yml validation allows only sizes such as 512MB
            self.con.execute(f"set memory_limit = '{limit.strip()}'")

    def cursor(self) -> Any:
        """A connection for the current thread (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.con.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def interrupt(self) -> None:
        """Stop the statements running now (Ctrl-C, SIGTERM): a cursor's query is not stopped by
        interrupting the connection it came from, so every cursor is interrupted too."""
        with self._lock:
            cursors = list(self._cursors)
        for cur in [self.con, *cursors]:
            cur.interrupt()

    def relation_type(self, schema: str, name: str) -> str | None:
        """'table', 'view' or None."""
        rows = self.cursor().execute(
            "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name]).fetchall()
        if not rows:
            return None
        return "view" if rows[0][0] == "VIEW" else "table"

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        return self.cursor().execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position", [schema, name]).fetchall()

    def ensure_schema(self, schema: str) -> None:
        # one at a time: two seeds of one `+schema` creating it on two cursors is a write-write conflict
        with self._schema_lock:
            self.cursor().execute(f"create schema if not exists {quote(schema)}")

    def close(self) -> None:
        try:
            self.functions.close()
        finally:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect_memory() -> Any:
    import duckdb

    return duckdb.connect(":memory:")
