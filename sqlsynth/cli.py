"""The `sqlsynth` command: parse options, make one library call, format the output.

Exit codes: 0 everything selected succeeded; 1 a node failed (SQL error, failing test); 2 the project
or the command line is wrong (nothing ran).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .cli_errors import handle_errors as _handle_errors
from .cli_options import (
    LS_JSON_KEYS,
    FullSummaryGroup,
    MultiWordOption,
    exclude_option,
    fail_on_ai_errors_option,
    parse_vars,
    project_dir_option,
    select_option,
    serve_option,
    threads_option,
)
from .node_types import NodeType


def _common(command):
    """Options every project command takes (dbt's names)."""
    options = [
        click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Project folder (default: current directory)."),
        select_option(),
        exclude_option(),
        click.option("--vars", "vars_", default=None, help="Vars as JSON/YAML: '{\"key\": value}'."),
        click.option("--target-path", default=None, help="Artifacts folder (default: target)."),
        click.option("--target", "-t", "target_name", default=None,
                     help="Target from project.yml targets: (default: target:, else duckdb)."),
        click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Artifacts of an earlier run (its manifest.json, run_results.json) for "
                          "state:modified, state:new and result:<status> selectors."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _options(ctx: click.Context, project_dir, select, exclude, vars_, target_path, **extra):
    from .api import Options

    root = ctx.find_root().params.get("project_dir")
    words = [w for s in select for w in s.split()]
    return Options(project_dir=project_dir or root or Path("."), select=words,
                   exclude=[w for s in exclude for w in s.split()], vars=parse_vars(vars_),
                   target_path=target_path, **extra)


@click.group(cls=FullSummaryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqlsynth")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder (default: current directory).")
def main(project_dir):
    """sqlsynth: dbt-style SQL models on DuckDB that build synthetic fine-tuning data with LLMs."""


def _run_command(name: str, ctx, quiet: bool = False, **params):
    from .api import execute
    from .run_progress import Reporter

    options = _options(ctx, **params)
    reporter = Reporter(quiet=quiet)
    report = execute(name, options, reporter)
    reporter.summary(report.results, report.elapsed, report.usage)
    sys.exit(report.exit_code)


@main.command()
@_common
@click.option("--full-refresh", is_flag=True, help="Accepted for dbt compatibility (seeds always reload).")
@threads_option()
@click.pass_context
@_handle_errors
def seed(ctx, full_refresh, threads, **params):
    """Load seeds/*.csv|jsonl|parquet as tables (replaced atomically)."""
    _run_command("seed", ctx, threads=threads, **params)


def _building(command):
    """The options of the commands that build models (run, build)."""
    for option in (_handle_errors, click.pass_context, serve_option(), fail_on_ai_errors_option(), threads_option(),
                   click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch."),
                   _common):
        command = option(command)
    return command


@main.command()
@_building
def run(ctx, **params):
    """Build the selected models in DAG order."""
    _run_command("run", ctx, **params)


@main.command()
@_common
@threads_option()
@click.pass_context
@_handle_errors
def test(ctx, threads, **params):
    """Run data tests (schema.yml generic tests and tests/*.sql) and unit tests (unit_tests: in schema YAML)."""
    _run_command("test", ctx, threads=threads, **params)


@main.command()
@_building
def build(ctx, **params):
    """Seed, run and test in DAG order; a failure skips everything downstream."""
    _run_command("build", ctx, **params)


@main.command()
@project_dir_option()
@click.option("--target-path", default=None, help="Artifacts folder holding run_results.json (default: target).")
@threads_option()
@click.pass_context
@_handle_errors
def retry(ctx, project_dir, target_path, threads):
    """Re-run the last seed/run/test/build for the nodes that failed or were skipped, with its flags."""
    from .api import Options, execute
    from .console import console
    from .retry import retry_options
    from .run_progress import Reporter

    root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
    command, options = retry_options(Options(project_dir=root, target_path=target_path, threads=threads))
    if not options.only:
        console.print(f"Nothing to retry: every node of the last '{command}' succeeded.")
        return
    console.print(f"Retrying {len(options.only)} node(s) of the last '{command}'.")
    reporter = Reporter()
    report = execute(command, options, reporter)
    reporter.summary(report.results, report.elapsed, report.usage)
    sys.exit(report.exit_code)


@main.command(name="compile")
@_common
@click.option("--quiet", "-q", is_flag=True, help="Only write target/compiled/, print nothing.")
@click.option("--inline", default=None, help='Compile this ad-hoc SQL instead: --inline "select * from {{ ref(\'x\') }}".')
@click.pass_context
@_handle_errors
def compile_(ctx, quiet, inline, **params):
    """Render models and tests to target/compiled/ and print the SQL."""
    from .api import compile_inline, compile_nodes
    from .console import out

    if inline is not None:
        out.print(compile_inline(_options(ctx, **params), inline), markup=False, highlight=False)
        return
    for node, sql, _path in compile_nodes(_options(ctx, **params)):
        if not quiet:
            out.print(f"-- {node.name} ({node.original_file_path})", markup=False)
            out.print(sql + "\n", markup=False, highlight=False)


@main.command()
@click.argument("target", required=False)
@click.option("--select", "-s", "select", default=None, help="The model or seed to preview (as in dbt show -s).")
@click.option("--inline", default=None, help='An ad-hoc query to preview (Jinja allowed: {{ ref(\'x\') }}).')
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder (default: current directory).")
@click.option("--vars", "vars_", default=None, help="Vars as JSON/YAML.")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Rows to show.")
@click.option("--output", type=click.Choice(["table", "json", "csv"]), default="table", help="Output format.")
@click.pass_context
@_handle_errors
def show(ctx, target, select, inline, project_dir, vars_, limit, output):
    """Preview a model/seed (-s NAME), or an ad-hoc query (--inline SQL, Jinja allowed)."""
    from .api import show as show_
    from .console import out
    from .run_progress import result_table

    given = [value for value in (target, select, inline) if value is not None]
    if len(given) != 1:
        raise click.UsageError('give one of: -s MODEL, --inline "select ...", or a name/query argument')
    target = given[0]
    options = _options(ctx, project_dir, (), (), vars_, None)
    columns, rows = show_(options, target, limit)
    if output == "json":
        out.print_json(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
    elif output == "csv":
        import csv

        from .masking import MaskedStream

        writer = csv.writer(MaskedStream("stdout"))
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        out.print(result_table(columns, rows))


@main.command(name="ls")
@_common
@click.option("--resource-type", "resource_types", multiple=True,
              type=click.Choice([t.value for t in NodeType]), help="Only these node types (default: all).")
@click.option("--output", type=click.Choice(["name", "path", "json", "selector"]), default="name",
              help="name (type:name), path, selector, or one JSON object per line with dbt's keys.")
@click.option("--output-keys", "output_keys", cls=MultiWordOption, multiple=True,
              help=f"JSON keys to print (space-separated), of: {', '.join(LS_JSON_KEYS)}.")
@click.pass_context
@_handle_errors
def ls(ctx, resource_types, output, output_keys, **params):
    """List the nodes a selection matches."""
    from .api import list_project_nodes
    from .artifacts import ls_json
    from .console import out

    keys = [key for words in output_keys for key in words.split()] or list(LS_JSON_KEYS)
    unknown = sorted(set(keys) - set(LS_JSON_KEYS))
    if unknown:
        raise click.BadParameter(f"unknown key(s) {', '.join(unknown)}; choose from {', '.join(LS_JSON_KEYS)}",
                                 param_hint="--output-keys")
    types = tuple(resource_types) or tuple(NodeType)
    project, nodes = list_project_nodes(_options(ctx, **params), types)
    for node in nodes:
        if output == "path":
            out.print(node.original_file_path, markup=False)
        elif output == "selector":
            out.print(".".join(node.fqn) if node.fqn else node.name, markup=False)
        elif output == "json":
            out.print(json.dumps(ls_json(project, node, keys), default=str), markup=False)
        else:
            out.print(f"{node.resource_type}:{node.name}", markup=False)


@main.command()
@project_dir_option()
@click.option("--include-database", is_flag=True, help="Also delete the DuckDB file (and its LLM cache).")
@click.pass_context
@_handle_errors
def clean(ctx, project_dir, include_database):
    """Delete target/ (compiled SQL, exports, artifacts); the database is kept unless asked."""
    from .api import clean as clean_
    from .console import console

    root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
    removed = clean_(root, include_database)
    console.print(f"Removed {len(removed)} item(s).")


@main.command()
@project_dir_option()
@click.pass_context
@_handle_errors
def debug(ctx, project_dir):
    """Check the setup: project files, database and its lock, storage version, endpoints (key, server, local model), extras."""
    from rich.markup import escape

    from .console import out
    from .debug import FAIL, run_checks

    root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
    checks = run_checks(root.resolve())
    marks = {"ok": "[green]OK  [/green]", "warn": "[yellow]WARN[/yellow]", "fail": "[red]FAIL[/red]"}
    for check in checks:
        out.print(f"{marks[check.status]} {escape(check.name)}: {escape(check.detail)}", highlight=False)
    failed = [c.name for c in checks if c.status == FAIL]
    out.print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "All checks passed.",
              markup=False)
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@_handle_errors
def init(name, force):
    """Create a project NAME: seeds, staging/mart models, data and unit tests, a UDF, and an LLM part (questions answered by ai_query, chat JSONL export)."""
    import shlex

    from .console import console
    from .scaffold import create_project

    path = create_project(Path(name), force=force)
    # quoted, so the line can be pasted into a shell whatever the folder name holds
    console.print(f"Created {path}. Next: cd {shlex.quote(name)} && sqlsynth build  (the models tagged llm "
                  "answer seeds/customer_questions.csv with the bundled local model, ~1 min on a CPU, and "
                  "write target/exports/chat.jsonl)", markup=False)


@main.command()
@project_dir_option()
@click.option("--vars", "vars_", default=None, help="Vars as JSON/YAML.")
@click.option("--metrics", default=None,
              help="Relation with one row per contestant (default: eval_metrics when built, else a report of "
                   "what the project has built).")
@click.option("--examples", default="eval_examples", show_default=True,
              help="Relation of (question, contestant, answer) rows shown side by side.")
@click.option("--training-summary", type=click.Path(path_type=Path), default=None,
              help="training_summary.json (default: <var student_model_dir>/training_summary.json).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: target/report).")
@click.pass_context
@_handle_errors
def report(ctx, project_dir, vars_, metrics, examples, training_summary, out):
    """Write an HTML report (metrics, charts, loss curve, example answers) to target/report/; a project
    without evaluation tables gets its relations, LLM usage and exported datasets."""
    from .api import report as report_
    from .console import console

    path = report_(_options(ctx, project_dir, (), (), vars_, None), metrics, examples, training_summary, out)
    console.print(f"Wrote {path}")


def _add_plugin_commands() -> None:
    """Commands plugins register (ai_query's cache/plan, third-party groups): sqlsynth.extensions."""
    from .extensions import registry

    for command in registry().commands:
        main.add_command(command)


_add_plugin_commands()
