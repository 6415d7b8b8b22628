"""CLI commands of the ai_query part: `sqlsynth cache stats|clear|export|import` and `sqlsynth plan`.

cli.py adds everything in COMMANDS. Each command parses options, makes one library call and prints;
this module imports nothing heavy at import time (`sqlsynth --help` stays fast).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from ..cli_errors import handle_errors as _errors
from ..cli_options import FullSummaryGroup, exclude_option, parse_vars, select_option


def _project_dir(ctx: click.Context, value: Path | None) -> Path:
    return value or ctx.find_root().params.get("project_dir") or Path(".")


_project_option = click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                               help="Project folder (default: current directory).")


def _open(project_dir: Path, read_only: bool):
    from ..project import load_project

    return _open_project(load_project(project_dir, {}), read_only)


def _open_project(project, read_only: bool):
    from ..database import connect

    path = project.database_path
    if read_only and not path.exists():
        return None
    return connect(path, read_only=read_only, storage_version=project.config.storage_compatibility_version)


@click.group("cache", cls=FullSummaryGroup)
def cache_group() -> None:
    """Inspect or clear the ai_query cache (tables sqlsynth.cache and sqlsynth.calls)."""


@cache_group.command("stats")
@_project_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_errors
def cache_stats(ctx: click.Context, project_dir: Path | None, as_json: bool) -> None:
    """Cached answers, tokens, calls and errors per endpoint."""
    import json

    from ..console import out
    from . import cache

    con = _open(_project_dir(ctx, project_dir), read_only=True)
    rows = [] if con is None else cache.stats(con)
    if con is not None:
        con.close()
    if as_json:
        out.print(json.dumps(rows, default=str, indent=2), markup=False)
        return
    if not rows:
        out.print("The ai_query cache is empty.")
        return
    from rich.table import Table

    table = Table("endpoint", "model", "cached", "prompt tokens", "completion tokens", "calls", "errors", "last")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("endpoint", "model", "cached", "prompt_tokens",
                                             "completion_tokens", "calls", "errors", "last")))
    out.print(table)


@cache_group.command("clear")
@_project_option
@click.option("--endpoint", default=None, help="Only this endpoint's answers (default: all).")
@click.pass_context
@_errors
def cache_clear(ctx: click.Context, project_dir: Path | None, endpoint: str | None) -> None:
    """Delete cached answers so the next run asks again (the call log is kept)."""
    from ..console import console
    from . import cache

    root = _project_dir(ctx, project_dir)
    if endpoint is not None:
        _check_endpoint(root, endpoint)
    con = _open(root, read_only=False)
    try:
        count = cache.clear(con, endpoint)
    finally:
        con.close()
    console.print(f"Deleted {count} cached answers" + (f" of endpoint '{endpoint}'." if endpoint else "."))


_target_option = click.option("--target", "-t", "target_name", default=None,
                              help="Target from project.yml targets: (default: target:, else duckdb).")
_file_argument = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


@contextmanager
def _cache_engine(project_dir: Path, target_name: str | None, read_only: bool):
    """(project, connection or None) on DuckDB, (project, session) on spark/databricks."""
    from ..api import Options, load

    project, _ = load(Options(project_dir=project_dir, target_name=target_name))
    if project.target.type != "duckdb":
        from ..targets.spark_session import open_session

        yield project, open_session(project.target_name, project.target, project.target_dir / "spark")
        return
    con = _open_project(project, read_only)
    try:
        yield project, con
    finally:
        if con is not None:
            con.close()


@cache_group.command("export")
@_file_argument
@_project_option
@_target_option
@click.option("--endpoint", default=None, help="Only this endpoint's answers (default: all).")
@click.pass_context
@_errors
def cache_export(ctx: click.Context, file: Path, project_dir: Path | None, target_name: str | None,
                 endpoint: str | None) -> None:
    """Write the cached answers to FILE (Parquet), to seed another engine's cache with `cache import`."""
    from ..console import console
    from . import cache_io

    if endpoint is not None:
        _check_endpoint(_project_dir(ctx, project_dir), endpoint)
    with _cache_engine(_project_dir(ctx, project_dir), target_name, read_only=True) as (project, handle):
        export = cache_io.duckdb_export if project.target.type == "duckdb" else cache_io.spark_export
        count = export(handle, file, endpoint)
    console.print(f"Exported {count:,} cached answers to {file}.")


@cache_group.command("import")
@_file_argument
@_project_option
@_target_option
@click.pass_context
@_errors
def cache_import(ctx: click.Context, file: Path, project_dir: Path | None, target_name: str | None) -> None:
    """Merge the answers in FILE (from `cache export`) into the cache; answers already cached are kept."""
    from ..console import console
    from . import cache_io

    with _cache_engine(_project_dir(ctx, project_dir), target_name, read_only=False) as (project, handle):
        if project.target.type == "duckdb":
            counts = cache_io.duckdb_import(handle, file)
        else:
            counts = cache_io.spark_import(handle, file, getattr(project.target, "table_format", "delta"))
    console.print(f"Imported {counts.new:,} new answers from {file} "
                  f"({counts.already_cached:,} already cached, {counts.in_file:,} in the file).")


def _check_endpoint(root: Path, endpoint: str) -> None:
    """An endpoint name that neither project.yml nor the cache knows is a typo, not "0 deleted"."""
    from ..errors import ConfigError, did_you_mean
    from ..project import load_project
    from . import cache
    from .endpoints import endpoints

    known = set(endpoints(load_project(root, {}).config))
    con = _open(root, read_only=True)
    if con is not None:
        known |= {row["endpoint"] for row in cache.stats(con)}
        con.close()
    if endpoint not in known:
        raise ConfigError(f"--endpoint {endpoint}: no such endpoint; known: {', '.join(sorted(known))}",
                          hint=did_you_mean(endpoint, known) or "see endpoints: in project.yml")


@click.command("plan")
@_project_option
@select_option()
@exclude_option()
@click.option("--vars", "vars_", default=None, help="Vars as JSON/YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@_errors
def plan_command(ctx: click.Context, project_dir: Path | None, select: tuple[str, ...],
                 exclude: tuple[str, ...], vars_: str | None, as_json: bool) -> None:
    """Per model: rows that would call an LLM, how many are cached, estimated tokens and cost.

    Calls nothing: ai_query runs in dry-run mode over the data that exists now.
    """
    import json

    from ..api import Options, plan
    from ..console import out

    options = Options(project_dir=_project_dir(ctx, project_dir), select=[w for s in select for w in s.split()],
                      exclude=[w for s in exclude for w in s.split()],
                      vars=parse_vars(vars_))
    rows = plan(options)
    _warn_missing_keys(options.project_dir, {r.endpoint for r in rows})
    if as_json:
        out.print(json.dumps([r.as_dict() for r in rows], indent=2), markup=False)
        return
    if not rows:
        out.print("No selected model calls ai_query.")
        return
    from rich.table import Table

    table = Table("model", "endpoint", "rows", "unique", "cached", "to call", "prompt tok (est)",
                  "answer tok (est)", "cost (est)")
    for r in rows:
        if r.note:
            table.add_row(r.model, r.endpoint, "?", "?", "?", "?", "", "", r.note)
            continue
        cost = f"{r.cost:.4f}" if r.cost is not None else "-"
        table.add_row(r.model, r.label, str(r.rows), str(r.unique), str(r.cached), str(r.to_call),
                      str(r.prompt_tokens), str(r.completion_tokens), cost)
    out.print(table)


def _warn_missing_keys(project_dir: Path, names: set[str]) -> None:
    """An endpoint the plan would call whose key is unset: the run would fail on its first request."""
    from ..config import load_project_config
    from ..console import console
    from .endpoints import endpoints, missing_key

    configured = endpoints(load_project_config(project_dir.resolve()))
    for name in sorted(names & set(configured)):
        problem = missing_key(name, configured[name])
        if problem:
            console.print(f"[yellow]warning[/yellow] {problem}: `sqlsynth run` would fail on its first call",
                          highlight=False)


COMMANDS = [cache_group, plan_command]
