"""`sqlsynth cache export|import`: the ai_query cache as one Parquet file, on DuckDB and on Spark.

Both engines key answers with the same function (cache.cache_key), so a file exported from a local
run seeds a cluster run and back. The file holds the cache table's columns with fixed Arrow types;
importing merges by key: answers already cached are kept (never overwritten), a key repeated in the
file counts once. A file that is not such a cache is one message naming the file and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SqlsynthError
from .cache import CACHE_COLUMNS, CACHE_DDL, SCHEMA

# Parquet key/value metadata that marks a file written by `sqlsynth cache export`
FILE_MARK = b"sqlsynth.cache"
FILE_VERSION = b"1"
REQUIRED = ("key", "endpoint", "response")
_KEY = re.compile(r"[0-9a-f]{64}")
_FIX = "write the file with `sqlsynth cache export FILE.parquet`"


def arrow_schema() -> Any:
    """The file's columns: the cache table's, JSON columns as text, timestamps in microseconds (UTC)."""
    import pyarrow as pa

    types = {"prompt_tokens": pa.int32(), "completion_tokens": pa.int32(), "created_at": pa.timestamp("us")}
    return pa.schema([(name, types.get(name, pa.string())) for name in CACHE_COLUMNS],
                     metadata={FILE_MARK: FILE_VERSION})


@dataclass
class ImportCounts:
    in_file: int
    new: int

    @property
    def already_cached(self) -> int:
        return self.in_file - self.new


# --------------------------------------------------------------------------- the file

def write_file(table: Any, path: Path) -> int:
    """Write atomically (a temporary file renamed over FILE), so a failed export leaves FILE as it was."""
    import pyarrow.parquet as pq

    table = conform(table, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(table, partial, compression="zstd")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return table.num_rows


def read_file(path: Path) -> Any:
    """The file's rows in the canonical schema, one row per key (the first), validated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise SqlsynthError("no such file", path=str(path), hint=f"give the path of a file {_FIX}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SqlsynthError(f"not a Parquet file ({first})", path=str(path), hint=_FIX) from None
    table = conform(table, str(path))
    _check_rows(table, str(path))
    return _first_per_key(table)


def conform(table: Any, where: str) -> Any:
    """The table in the file schema: known columns only, missing optional ones null, types cast."""
    import pyarrow as pa

    schema = arrow_schema()
    unknown = [name for name in table.column_names if name not in schema.names]
    missing = [name for name in REQUIRED if name not in table.column_names]
    if missing or unknown:
        what = (f"missing column(s) {', '.join(missing)}" if missing else "") + \
               ("; " if missing and unknown else "") + \
               (f"unknown column(s) {', '.join(unknown)}" if unknown else "")
        raise SqlsynthError(f"not an ai_query cache file: {what}", path=where,
                            hint=f"expected the columns {', '.join(schema.names)}; {_FIX}")
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        try:
            columns.append(table[field.name].cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SqlsynthError(f"column {field.name} cannot be read as {field.type}: {str(exc).splitlines()[0]}",
                                path=where, hint=_FIX) from None
    return pa.Table.from_arrays(columns, schema=schema)


def _check_rows(table: Any, where: str) -> None:
    keys, responses = table["key"].to_pylist(), table["response"]
    for index, key in enumerate(keys):
        if key is None or not _KEY.fullmatch(key):
            raise SqlsynthError(f"row {index + 1}: {key!r} is not an ai_query cache key (64 hex digits)",
                                path=where, hint=_FIX)
    nulls = responses.null_count
    if nulls:
        first = responses.is_null().to_pylist().index(True)
        raise SqlsynthError(f"row {first + 1}: response is empty ({nulls} such rows)", path=where, hint=_FIX)


def _first_per_key(table: Any) -> Any:
    seen: set[str] = set()
    keep = [not (key in seen or seen.add(key)) for key in table["key"].to_pylist()]
    return table if all(keep) else table.filter(keep)


def _only(table: Any, endpoint: str | None) -> Any:
    import pyarrow.compute as pc

    return table if endpoint is None else table.filter(pc.equal(table["endpoint"], endpoint))


# --------------------------------------------------------------------------- DuckDB

def _duckdb_has_cache(con: Any) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = $1 AND table_name = 'cache'", [SCHEMA]).fetchall()[0][0])


def duckdb_export(con: Any, path: Path, endpoint: str | None = None) -> int:
    """Write the project's DuckDB cache (con None: no database yet, an empty file) to PATH."""
    columns = ", ".join(CACHE_COLUMNS)
    if con is None or not _duckdb_has_cache(con):
        return write_file(arrow_schema().empty_table(), path)
    table = con.sql(f"SELECT {columns} FROM {SCHEMA}.cache ORDER BY key").to_arrow_table()
    return write_file(_only(conform(table, str(path)), endpoint), path)


def duckdb_import(con: Any, path: Path) -> ImportCounts:
    table = read_file(path)
    con.execute(CACHE_DDL)
    before = con.execute(f"SELECT count(*) FROM {SCHEMA}.cache").fetchall()[0][0]
    columns = ", ".join(CACHE_COLUMNS)
    con.register("__sqlsynth_cache_import", table)
    try:
        con.execute(f"INSERT OR IGNORE INTO {SCHEMA}.cache ({columns}) "
                    f"SELECT {columns} FROM __sqlsynth_cache_import")
    finally:
        con.unregister("__sqlsynth_cache_import")
    after = con.execute(f"SELECT count(*) FROM {SCHEMA}.cache").fetchall()[0][0]
    return ImportCounts(in_file=table.num_rows, new=after - before)


# --------------------------------------------------------------------------- Spark

SPARK_TABLE = f"`{SCHEMA}`.`cache`"


def _spark_ddl(table_format: str) -> str:
    # the same table the staged Spark ai_query writes (targets/spark_ai_spool.py)
    types = {"prompt_tokens": "int", "completion_tokens": "int", "created_at": "timestamp"}
    columns = ", ".join(f"`{name}` {types.get(name, 'string')}" for name in CACHE_COLUMNS)
    return f"create table if not exists {SPARK_TABLE} ({columns}) using {table_format}"


def _utc(table: Any) -> Any:
    """created_at as an instant in UTC (the file's naive times are UTC), whatever the session's time zone."""
    import pyarrow as pa

    index = table.schema.get_field_index("created_at")
    return table.set_column(index, "created_at", table["created_at"].cast(pa.timestamp("us", tz="UTC")))


def spark_export(spark: Any, path: Path, endpoint: str | None = None) -> int:
    if not spark.catalog.tableExists(SPARK_TABLE):
        return write_file(arrow_schema().empty_table(), path)
    frame = spark.table(SPARK_TABLE).select(*[f"`{name}`" for name in CACHE_COLUMNS]).orderBy("key")
    return write_file(_only(conform(frame.toArrow(), str(path)), endpoint), path)


def spark_import(spark: Any, path: Path, table_format: str = "parquet") -> ImportCounts:
    """Append the file's keys that the Spark cache table does not hold yet (an anti-join)."""
    table = read_file(path)
    from ..targets.spark_database import ensure_schema

    ensure_schema(spark, SCHEMA)
    spark.sql(_spark_ddl(table_format))
    incoming = spark.createDataFrame(_utc(table))
    new = incoming.join(spark.table(SPARK_TABLE).select("key"), on="key", how="left_anti")
    # collected before the append: a plan that reads the table it writes to is not allowed everywhere
    rows = new.select(*[f"`{name}`" for name in CACHE_COLUMNS]).toArrow()
    if rows.num_rows:
        spark.createDataFrame(_utc(conform(rows, str(path)))).write.insertInto(SPARK_TABLE)
    return ImportCounts(in_file=table.num_rows, new=rows.num_rows)
