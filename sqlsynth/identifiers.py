"""The one way sqlsynth writes a schema, table or column name into SQL.

Every identifier is double-quoted with embedded quotes doubled (SQL standard, what DuckDB and
sqlglot do), so a name from a file name or an `alias`/`schema` config is always one identifier and
never SQL: `x" as select 1; drop table t; --` stays a (strange) table name.
"""

from __future__ import annotations

import re

# Characters that dbt's selection syntax gives a meaning to (or that split words): a node named with
# one of them would be listed by `ls` but could never be picked by --select.
_UNSELECTABLE = re.compile(r"[\s\"'`+*@:,?\[\]]")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def relation(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def unselectable_character(name: str) -> str | None:
    """The first character that keeps `name` from being selected with --select, or None."""
    match = _UNSELECTABLE.search(name)
    return match.group(0) if match else None
