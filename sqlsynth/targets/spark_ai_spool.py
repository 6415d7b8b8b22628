"""The cache and call log of ai_query on Spark: tables sqlsynth.cache / sqlsynth.calls, and the spool.

A Spark task cannot write to a table row by row, and a job's output is committed only when the job
ends, so a task writes each flush of answers (every fraction of a second, BatchAnswerer's own rhythm)
as one small Parquet file into the *spool* — a folder the executors and this process both reach. After
the stage and before every stage (a run killed half way left files there) Spark reads the spooled files
into the tables, so the answers never pass through this process and nothing answered is paid twice.
Files appear by rename, so a half-written one is never read.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
import weakref
from typing import Any

CACHE_COLUMNS = (
    ("key", "string"), ("endpoint", "string"), ("provider", "string"), ("model", "string"),
    ("base_url", "string"), ("request", "string"), ("parameters", "string"), ("response_format", "string"),
    ("response", "string"), ("prompt_tokens", "int"), ("completion_tokens", "int"),
    ("created_at", "timestamp_ntz"), ("finish_reason", "string"))
CALL_COLUMNS = (
    ("ts", "timestamp_ntz"), ("endpoint", "string"), ("provider", "string"), ("model", "string"),
    ("key", "string"), ("node", "string"), ("status", "string"), ("attempts", "int"),
    ("prompt_tokens", "int"), ("completion_tokens", "int"), ("latency_ms", "double"), ("error", "string"),
    ("finish_reason", "string"))
TABLES = {"cache": CACHE_COLUMNS, "calls": CALL_COLUMNS}
SCHEMA = "sqlsynth"
INGEST_FILES = 500  # spool files moved per Spark insert
_ingest_lock = threading.Lock()
_tables_ready: weakref.WeakSet = weakref.WeakSet()  # sessions whose tables exist


def _arrow_schema(columns: tuple[tuple[str, str], ...]) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "int": pa.int32(), "double": pa.float64(), "timestamp_ntz": pa.timestamp("us")}
    return pa.schema([(name, types[kind]) for name, kind in columns])


def _filesystem(root: str) -> tuple[Any, str]:
    from pyarrow import fs

    if "://" in root:
        return fs.FileSystem.from_uri(root)
    return fs.LocalFileSystem(), root


class SpoolCache:
    """What BatchAnswerer needs from a cache, inside a Spark task: lookups see what an earlier attempt of
    the task spooled (a retried task does not re-pay); writes go to the spool."""

    writable = True
    warning = None

    def __init__(self, root: str):
        self.root = root

    def lookup(self, keys: list[str]) -> dict[str, tuple[str, str | None]]:
        wanted = set(keys)
        found: dict[str, tuple[str, str | None]] = {}
        for table in read_spool(self.root, "cache", columns=["key", "response", "finish_reason"]):
            for key, response, finish in zip(*(table.column(i).to_pylist() for i in range(3)), strict=True):
                if key in wanted:
                    found[key] = (response, finish)
        return found

    def payers(self, keys: list[str]) -> dict[str, str | None]:
        return {}

    def write(self, rows: list[Any], calls: list[Any]) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        if rows:
            _write(self.root, "cache", [(
                r.key, r.endpoint, r.identity.get("provider"), r.identity.get("model"), r.identity.get("base_url"),
                json.dumps(r.messages), json.dumps(r.parameters), r.response_format, r.response,
                r.prompt_tokens, r.completion_tokens, now, r.finish_reason) for r in rows])
        if calls:
            _write(self.root, "calls", [(
                now, c.endpoint, c.identity.get("provider"), c.identity.get("model"), c.key, c.node, c.status,
                c.attempts, c.prompt_tokens, c.completion_tokens, round(c.latency_ms, 3), c.error,
                c.finish_reason) for c in calls])

    def close(self) -> None:
        pass


def _write(root: str, table: str, values: list[tuple]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = TABLES[table]
    batch = pa.table({name: [v[i] for v in values] for i, (name, _) in enumerate(columns)},
                     schema=_arrow_schema(columns))
    filesystem, base = _filesystem(root)
    folder = f"{base.rstrip('/')}/{table}"
    filesystem.create_dir(folder, recursive=True)
    name = uuid.uuid4().hex
    pq.write_table(batch, f"{folder}/.{name}.tmp", filesystem=filesystem)  # dot files are never listed
    filesystem.move(f"{folder}/.{name}.tmp", f"{folder}/{name}.parquet")


def _files(root: str, table: str) -> tuple[Any, list[str]]:
    from pyarrow import fs

    filesystem, base = _filesystem(root)
    selector = fs.FileSelector(f"{base.rstrip('/')}/{table}", allow_not_found=True)
    return filesystem, sorted(i.path for i in filesystem.get_file_info(selector) if i.path.endswith(".parquet"))


def read_spool(root: str, table: str, columns: list[str] | None = None) -> list[Any]:
    import pyarrow.parquet as pq

    filesystem, paths = _files(root, table)
    return [pq.read_table(path, columns=columns, filesystem=filesystem) for path in paths]


def ensure_tables(spark: Any, table_format: str) -> None:
    """Create sqlsynth.cache / sqlsynth.calls if missing: checked once per session (metastore round trips)."""
    if spark in _tables_ready:
        return
    if not spark.catalog.databaseExists(SCHEMA):
        spark.sql(f"create schema if not exists {SCHEMA}")
    for table, columns in TABLES.items():
        if not spark.catalog.tableExists(f"{SCHEMA}.{table}"):
            ddl = ", ".join(f"`{name}` {kind}" for name, kind in columns)
            spark.sql(f"create table if not exists {SCHEMA}.{table} ({ddl}) using {table_format}")
    _tables_ready.add(spark)


def ingest(spark: Any, root: str) -> None:
    """Move spooled answers into sqlsynth.cache (first answer per key wins, a key already cached is kept)
    and calls into sqlsynth.calls: one insert per table. A file is deleted only after its rows are in."""
    from concurrent.futures import ThreadPoolExecutor

    with _ingest_lock, ThreadPoolExecutor(len(TABLES)) as pool:  # one mover at a time (models run in
        for done in [pool.submit(_ingest, spark, root, table) for table in TABLES]:  # threads); the two
            done.result()                                                            # tables at once


def _ingest(spark: Any, root: str, table: str) -> None:
    """Spark reads the spooled files itself (the answers never pass through this process, however many)."""
    columns = TABLES[table]
    filesystem, paths = _files(root, table)
    schema = ", ".join(f"`{name}` {kind}" for name, kind in columns)
    for start in range(0, len(paths), INGEST_FILES):
        chunk = paths[start:start + INGEST_FILES]
        rows = spark.read.schema(schema).parquet(*(_uri(root, path) for path in chunk))
        if table == "cache":  # the earliest answer per key (a retried task may have spooled one twice),
            first = rows.selectExpr("*", "row_number() over (partition by key order by created_at) as __n")
            cached = spark.table(f"{SCHEMA}.cache").select("key")  # and never a key the table already has
            rows = first.where("__n = 1").join(cached, "key", "left_anti")
        rows.select(*(f"`{name}`" for name, _ in columns)).write.insertInto(f"{SCHEMA}.{table}")  # by position
        for path in chunk:
            filesystem.delete_file(path)


def _uri(root: str, path: str) -> str:
    """A listed spool file as Spark opens it: pyarrow lists 'bucket/key' for 's3://bucket/...' roots."""
    if "://" in root:
        return f"{root.split('://', 1)[0]}://{path}"
    return f"file://{path}"
