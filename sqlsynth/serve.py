"""Live, read-only access to the project's database for other clients while this process holds it.

DuckDB lets one process write a file and locks every other process out, so nothing could read the
tables while a build ran. The process that holds the file serves it instead, through DuckDB's own
client-server protocol (the Quack extension): a client ATTACHes ``quack:host:port`` with a token and
reads the tables as the build commits them. The extension files come from the ``duckdb-extension-quack``
and ``duckdb-extension-httpfs`` packages (no download); every client query passes a read-only gate.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from .config import PROJECT_FILE, ServeConfig
from .errors import ConfigError, SqlsynthError

# package (import name, pip name) -> extension file name inside it
_EXTENSIONS = (("duckdb_extension_quack", "duckdb-extension-quack", "quack"),
               ("duckdb_extension_httpfs", "duckdb-extension-httpfs", "httpfs"))
GATE_FUNCTION = "sqlsynth_serve_read_only"
# Statements a client may wrap its reads in; every other statement must be a query (checked below).
_TRANSACTION = re.compile(r"^\s*(begin(\s+transaction)?|commit|rollback|abort|end)\s*;?\s*$", re.I)
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def extension_file(package: str, pip_name: str, name: str) -> Path:
    """The extension shipped inside a Python package, for the installed DuckDB version (LOADed by path)."""
    import duckdb

    spec = importlib.util.find_spec(package)
    install = f"pip install -c constraints.txt '{pip_name}=={duckdb.__version__}'"
    if spec is None or not spec.submodule_search_locations:
        raise SqlsynthError(f"serving the database needs the {pip_name} package", hint=install)
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{duckdb.__version__}" / \
        f"{name}.duckdb_extension"
    if not path.exists():
        raise SqlsynthError(f"the installed {pip_name} has no build for DuckDB {duckdb.__version__}",
                            path=str(path.parent.parent), hint=install)
    return path


class ReadOnlyGate:
    """Quack's authorization function: a client query runs only if DuckDB's own parser sees nothing
    but queries in it (json_serialize_sql serializes SELECT-like statements only: DESCRIBE, SHOW,
    SUMMARIZE, WITH ... SELECT) calling only DuckDB's built-in functions, or a bare transaction
    statement. The project's Python UDFs (ai_query first: each call may be paid) are not built in, so a
    client cannot call them. Parsed on a private in-memory connection that never touches the served
    database; its function list is what "built in" means."""

    def __init__(self) -> None:
        import duckdb

        self._parser = duckdb.connect()
        self._builtin = {name for (name,) in
                         self._parser.execute("select distinct lower(function_name) from duckdb_functions()").fetchall()}
        self._lock = threading.Lock()

    def __call__(self, session: str, query: str) -> bool:
        if _TRANSACTION.match(query or ""):
            return True
        with self._lock:
            tree = json.loads(self._parser.execute("select json_serialize_sql(?)", [query or ""]).fetchone()[0])
        return not tree.get("error") and all(name.lower() in self._builtin for name in _function_names(tree))

    def close(self) -> None:
        self._parser.close()


def _function_names(node: Any) -> Iterator[str]:
    """Every function a serialized statement calls (scalar, aggregate, window, table functions)."""
    if isinstance(node, dict):
        if isinstance(node.get("function_name"), str):
            yield node["function_name"]
        for value in node.values():
            yield from _function_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _function_names(item)


def _token(settings: ServeConfig) -> str:
    import os

    if not settings.token_env:
        return secrets.token_urlsafe(18)
    token = os.environ.get(settings.token_env, "")
    if len(token) < 8:
        raise ConfigError(f"serve: token_env names {settings.token_env}, which is "
                          f"{'too short (8 characters at least)' if token else 'not set'}", path=PROJECT_FILE,
                          hint=f"export {settings.token_env}=<a long random string>, or remove token_env "
                               "for a new token per run")
    return token


def _check_port_free(host: str, port: int) -> None:
    """Quack listens with SO_REUSEPORT, so a second server on a taken port would start silently and
    share the clients with the first: bind once without it to find out."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SqlsynthError(f"cannot serve on {host}:{port}: {exc.strerror or exc}",
                                hint="another program (another `sqlsynth serve` or --serve run?) uses that port: "
                                     "stop it, or pick another with --port or serve: port: in project.yml") from None


def attach_lines(uri: str, token: str, shown_token: str) -> list[str]:
    """What a DuckDB CLI or Python client (DuckDB 1.5.5, with the quack extension) runs to attach."""
    return ["INSTALL quack; LOAD quack;        -- offline: pip install duckdb-extension-quack, LOAD by path",
            f"CREATE SECRET (TYPE quack, TOKEN '{shown_token}');",
            f"ATTACH '{uri}' AS live;  -- then: from live.<table>, from live.sqlsynth.calls"]


def _print_attach(database: Path, uri: str, token: str, settings: ServeConfig) -> None:
    from .console import console

    shown = f"${settings.token_env}" if settings.token_env else token
    console.print(f"Serving {database} read-only on {uri}; attach from DuckDB 1.5.5 (CLI or Python):",
                  highlight=False, markup=False)
    for line in attach_lines(uri, token, shown):
        console.print(f"  {line}", highlight=False, markup=False)
    console.file.flush()  # a client waiting on a log file or pipe needs the lines now


def _load_extensions(con: Any) -> None:
    import duckdb

    for package, pip_name, name in _EXTENSIONS:
        path = extension_file(package, pip_name, name)
        try:
            con.execute(f"LOAD '{path}'")
        except duckdb.Error as exc:
            raise SqlsynthError(f"cannot load the {name} extension: {str(exc).splitlines()[0]}", path=str(path),
                                hint=f"reinstall {pip_name}=={duckdb.__version__}") from None


@contextmanager
def serving(con: Any, database: Path, settings: ServeConfig, port: int | None = None,
            host: str | None = None) -> Iterator[str]:
    """Serve the database open on ``con`` to other clients, read-only, until the block ends; yields the URI."""
    host, port = host or settings.host, port or settings.port
    token = _token(settings)
    _load_extensions(con)
    _check_port_free(host, port)
    gate = ReadOnlyGate()
    con.create_function(GATE_FUNCTION, gate, ["VARCHAR", "VARCHAR"], "BOOLEAN")
    con.execute(f"set quack_authorization_function = '{GATE_FUNCTION}'")
    uri = f"quack:{host}:{port}"
    con.execute("call quack_serve(?, token := ?, allow_other_hostname := ?)",
                [uri, token, host not in _LOCAL_HOSTS]).fetchall()
    _print_attach(database, uri, token, settings)
    try:
        yield uri
    finally:
        con.execute("call quack_stop(?)", [uri]).fetchall()
        gate.close()


def during_run(db: Any, settings: ServeConfig, asked: bool) -> Any:
    """`run/build --serve` (or serve: during_runs: true): serve the engine's database while the run works."""
    from .database import Database

    if not (asked or settings.during_runs):
        return nullcontext()
    if not isinstance(db, Database):
        raise ConfigError("--serve works on the duckdb target only", path=PROJECT_FILE,
                          hint="drop --serve, or run on the default duckdb target")
    return serving(db.con, db.path, settings)


def serve_forever(project: Any, port: int | None, host: str | None) -> None:
    """`sqlsynth serve`: hold the database (read-only) and serve it until Ctrl-C."""
    from .console import console
    from .database import Database

    if not project.database_path.exists():
        raise SqlsynthError("there is no database to serve yet", path=str(project.database_path),
                            hint="run `sqlsynth build` first, or `sqlsynth build --serve` to serve while it builds")
    with Database(project, read_only=True) as db, serving(db.con, db.path, project.config.serve, port, host):
        console.print("Ctrl-C stops serving.", highlight=False)
        console.file.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("Stopped serving.", highlight=False)
