"""Click options that behave as dbt's: `-s a b c` takes every word up to the next option."""

from __future__ import annotations

from pathlib import Path

import click


def parse_vars(text: str | None) -> dict:
    """--vars as JSON/YAML (YAML is a superset of JSON, as in dbt; bounded in size) → a mapping."""
    if not text:
        return {}
    import yaml

    from .yamlfile import parse_yaml

    try:
        value = parse_yaml(text, "--vars")
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not valid JSON/YAML: {exc}", param_hint="--vars") from None
    if not isinstance(value, dict):
        raise click.BadParameter("expected a mapping, e.g. '{\"n_questions\": 5}'", param_hint="--vars")
    return value


class MultiWordOption(click.Option):
    """A repeatable option that also swallows the space-separated words after it (dbt's selectors).

    Click has no `nargs=-1` for options, so the parser's handler for this option is wrapped: after
    the first value it takes the following words until one looks like an option. The words are
    joined with spaces; the caller splits them again, as it does for a quoted "a b".
    """

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        handler = next(parser._long_opt.get(name) or parser._short_opt.get(name) for name in self.opts)
        original = handler.process

        def process(value, state) -> None:
            words = [value]
            while state.rargs and not state.rargs[0].startswith("-"):
                words.append(state.rargs.pop(0))
            original(" ".join(words), state)

        handler.process = process


def select_option(**kwargs):
    """--select/-s with dbt's older aliases -m/--models."""
    return click.option("--select", "-s", "--models", "-m", "select", cls=MultiWordOption, multiple=True,
                        help="Nodes to include (dbt syntax; space-separated or repeated).", **kwargs)


def exclude_option(**kwargs):
    return click.option("--exclude", "exclude", cls=MultiWordOption, multiple=True,
                        help="Nodes to leave out (dbt syntax; space-separated or repeated).", **kwargs)


# `dbt ls --output json` keys (dbt's default set), in dbt's order; artifacts.ls_json fills them
LS_JSON_KEYS = ("name", "resource_type", "package_name", "original_file_path", "unique_id", "alias",
                "depends_on", "config", "tags", "source_name")


class FullSummaryGroup(click.Group):
    """A group whose command list shows each summary whole (wrapped), not cut at ~45 characters."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        rows = [(name, command.get_short_help_str(limit=400)) for name, command in commands
                if command is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def threads_option():
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="Nodes built in parallel, at least 1 (default: threads in project.yml).")


def fail_on_ai_errors_option():
    return click.option("--fail-on-ai-errors", is_flag=True,
                        help="A model with any failed ai_query value (failOnError => false) is an ERROR and "
                             "keeps its previous table (default: OK with the error count; WARN if all failed).")


def serve_option():
    return click.option("--serve", is_flag=True,
                        help="Serve the database read-only to other DuckDB clients while the run works "
                             "(Quack protocol, localhost, token printed once; project.yml serve:).")


def project_dir_option():
    return click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Project folder (default: current directory).")
