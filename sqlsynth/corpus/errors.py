"""Errors of the corpus path. All are SqlsynthErrors: message, file/line where known, and a fix."""

from __future__ import annotations

from ..errors import SeedError, SqlsynthError


class CorpusError(SqlsynthError):
    """A corpus function or the vector index was used wrongly (unknown collection, k <= 0, ...)."""


class XmlSeedError(SeedError):
    """A Stack Exchange XML dump cannot be read; carries the line and column."""

    def __init__(self, message: str, *, path: str, line: int | None = None, column: int | None = None,
                 hint: str | None = None):
        self.column = column
        super().__init__(message, path=path, line=line, hint=hint)

    @property
    def location(self) -> str | None:
        base = super().location
        return f"{base}:{self.column}" if base and self.line and self.column else base


def inline(error: SqlsynthError) -> SqlsynthError:
    """The error with its hint folded into the first line.

    Errors raised inside a DuckDB UDF reach the user as the first line of DuckDB's message, so the
    hint must not sit on a line of its own there.
    """
    if error.hint:
        error.message = f"{error.message} (hint: {error.hint})"
        error.hint = None
        error.args = (error.format(),)
    return error
