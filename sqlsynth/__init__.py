"""sqlsynth: a dbt-style, SQL-first project for synthetic fine-tuning data on DuckDB."""

__version__ = "0.1.0"

__all__ = ["SqlsynthError", "udf", "__version__"]


def __getattr__(name: str):
    # Lazy so that `sqlsynth --help` does not pay for pydantic/duckdb imports.
    if name == "udf":
        from .python_udfs import udf
        return udf
    if name == "SqlsynthError":
        from .errors import SqlsynthError
        return SqlsynthError
    raise AttributeError(name)
