"""One exception hierarchy for everything a user can get wrong.

Every error carries the file (and line where known), what went wrong and how to fix it; the CLI
prints ``str(error)`` and exits non-zero, never a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path


class SqlsynthError(Exception):
    """Root of all user-facing errors. ``exit_code`` 2 means nothing ran (bad project/usage)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 hint: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint
        super().__init__(self.format())

    @property
    def location(self) -> str | None:
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line else self.path

    def format(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(SqlsynthError):
    """project.yml or a schema YAML file is malformed or has an invalid value."""


class ProjectError(SqlsynthError):
    """The project's files are inconsistent: unknown ref, duplicate name, cycle, ..."""


class RenderError(SqlsynthError):
    """Jinja rendering failed (syntax, undefined var, missing env var, macro error)."""


class CompileError(SqlsynthError):
    """Rendered SQL does not parse or cannot be transpiled."""


class SeedError(SqlsynthError):
    """A seed file cannot be loaded."""


class UdfError(SqlsynthError):
    """A file under udfs/ cannot be imported or a function cannot be registered."""


class SelectionError(SqlsynthError):
    """--select/--exclude matched nothing or is malformed."""


class DatabaseLockedError(SqlsynthError):
    """Another process holds the DuckDB file."""


class ExecutionError(SqlsynthError):
    """A node failed while running (SQL runtime error); the run continues with other branches."""

    exit_code = 1


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean X?" suggestion, or None when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


# DuckDB wraps an exception raised inside a Python UDF (ai_query, corpus functions) in its own words
_UDF_WRAPPER = re.compile(r"^.*?Python exception occurred while executing the UDF: (\w+Error: )?", re.S)
_INTERNAL_CALL = re.compile(r"No function matches the given name and argument types "
                            r"'sqlsynth_ai_query\(.*?\)'\.(?: You might need to add explicit type casts\.)?")


def runtime_message(exc: BaseException) -> str:
    """A DuckDB runtime error as sqlsynth's message: a UDF's own error without DuckDB's wrapper, and
    ai_query's arguments in the user's terms, never the internal sqlsynth_ai_query(...) signature."""
    text = _UDF_WRAPPER.sub("", str(exc).strip())
    if "No space left on device" in text:  # DuckDB names the file; say what to do
        first, _, rest = text.partition("\n")
        text = f"{first}; free disk space on that file system and re-run (completed nodes are kept)\n{rest}"
    return _INTERNAL_CALL.sub("ai_query(endpoint, request, ...) got arguments of the wrong type: the endpoint is "
                              "the name of an endpoint as a string constant, the request a string or a list "
                              "of {role, content} structs", text)
