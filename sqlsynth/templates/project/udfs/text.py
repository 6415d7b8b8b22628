"""Python functions for SQL: every @udf here is registered in each DuckDB connection sqlsynth opens."""

from sqlsynth import udf


@udf
def shout(text: str) -> str:
    """Upper-cases a name: `select shout(name) from ...`."""
    return text.upper()
