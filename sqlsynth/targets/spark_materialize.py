"""Materializations and seeds on Spark. A table is built under a temporary name and swapped in only
after the build succeeded, so a failing build leaves the previous table readable."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SeedError
from ..export_guard import check_export_target, is_outside
from ..extensions import registry
from ..materialize import EXPORT_FORMATS, export_path, incremental_target_exists
from ..project import Node
from ..seeds import seed_select
from .spark_database import SparkDatabase, quote, relation

SPARK_STRATEGIES = ("append", "insert_overwrite", "delete+insert", "merge")

ARROW_BATCH_ROWS = 100_000


def unique_key(node: Node) -> list[str]:
    key = node.config.get("unique_key")
    return [] if key is None else [key] if isinstance(key, str) else list(key)


def incremental_strategy(node: Node, table_format: str) -> str:
    """The model's strategy, checked against what Spark can do with the target's table format."""
    strategy = node.config.get("incremental_strategy") or ("merge" if unique_key(node) else "append")
    if strategy not in SPARK_STRATEGIES:
        raise ConfigError(f"model '{node.name}': incremental_strategy '{strategy}' is not available on Spark",
                          path=node.original_file_path, hint=f"use one of: {', '.join(SPARK_STRATEGIES)}")
    if strategy in ("delete+insert", "merge") and not unique_key(node):
        raise ConfigError(f"incremental_strategy '{strategy}' needs a unique_key", path=node.original_file_path,
                          hint="add unique_key='id' (or a list of columns) to config()")
    if strategy == "merge" and table_format == "parquet":
        raise ConfigError(f"model '{node.name}': incremental_strategy 'merge' needs table_format delta or "
                          "iceberg (parquet tables cannot MERGE)", path=node.original_file_path,
                          hint="set table_format: delta (or iceberg) on the Spark target, or use "
                               "incremental_strategy='delete+insert', 'append' or 'insert_overwrite'")
    return strategy


def _temp(node: Node) -> str:
    return relation(node.schema, f"{node.alias}__sqlsynth_tmp")


def _format(db: SparkDatabase) -> str:
    return getattr(db.project.target, "table_format", "parquet")


def _drop(db: SparkDatabase, node: Node, kind: str | None) -> None:
    if kind:
        db.spark.sql(f"drop {'view' if kind == 'view' else 'table'} if exists {relation(node.schema, node.alias)}")


def _drop_temp(db: SparkDatabase, node: Node) -> None:
    # Iceberg's DROP TABLE leaves the files (Delta's managed tables take theirs): PURGE deletes them
    db.spark.sql(f"drop table if exists {_temp(node)}{' purge' if _format(db) == 'iceberg' else ''}")


def _provider(db: SparkDatabase, table: str) -> str:
    rows = db.spark.sql(f"describe table extended {table}").collect()
    return next((str(row[1]).lower() for row in rows if row[0] == "Provider"), "")


def _swap_in(db: SparkDatabase, node: Node, partitioning: str = "") -> int:
    """Replace the node's relation with the finished temporary table. Delta and Iceberg replace it in one
    atomic CREATE OR REPLACE: the table keeps its own location and history, and catalogs that cannot rename
    tables (Iceberg's hadoop catalog) work too; a parquet table is renamed into place."""
    target, temp, fmt = relation(node.schema, node.alias), _temp(node), _format(db)
    kind = db.relation_type(node.schema, node.alias)
    if fmt in ("delta", "iceberg"):
        if kind == "view" or (kind == "table" and _provider(db, target) != fmt):  # a view, or another format
            _drop(db, node, kind)
        db.spark.sql(f"create or replace table {target} using {fmt}{partitioning} as select * from {temp}")
        _drop_temp(db, node)
    else:
        _drop(db, node, kind)
        db.spark.sql(f"alter table {temp} rename to {target}")
    return db.spark.table(target).count()


def build_view(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    if db.relation_type(node.schema, node.alias) == "table":
        db.spark.sql(f"create or replace temporary view __sqlsynth_check as\n{sql}")  # fails before the drop
        _drop(db, node, "table")
    db.spark.sql(f"create or replace view {relation(node.schema, node.alias)} as\n{sql}")
    return None, "view"


def build_table(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    _drop_temp(db, node)
    db.spark.sql(f"create table {_temp(node)} using {_format(db)} as\n{sql}")
    rows = _swap_in(db, node)
    return rows, f"{rows:,} rows"


def build_ephemeral(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    return None, "ephemeral (inlined as a CTE)"


def _partitioning(node: Node) -> str:
    columns = node.config.get("partition_by")
    if not columns:
        return ""
    columns = [columns] if isinstance(columns, str) else list(columns)
    return f" partitioned by ({', '.join(quote(c) for c in columns)})"


def build_incremental(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    """append / insert_overwrite / delete+insert on any table format; merge on Delta and Iceberg."""
    strategy = incremental_strategy(node, _format(db))
    if not incremental_target_exists(db, node, db.full_refresh):
        _drop_temp(db, node)
        db.spark.sql(f"create table {_temp(node)} using {_format(db)}{_partitioning(node)} as\n{sql}")
        rows = _swap_in(db, node, _partitioning(node))
        return rows, f"{rows:,} rows (full build)"
    temp = _temp(node)
    _drop_temp(db, node)
    db.spark.sql(f"create table {temp} using {_format(db)} as\n{sql}")  # the model reads {{ this }}: build first
    rows = db.spark.table(temp).count()
    try:
        _apply(db, node, strategy)
    finally:  # a failed MERGE/DELETE commits nothing (Delta, Iceberg): the table stays as it was
        with contextlib.suppress(Exception):  # a leftover is dropped next time; never hide the error
            _drop_temp(db, node)
    return rows, f"{rows:,} rows {strategy}"


def _apply(db: SparkDatabase, node: Node, strategy: str) -> None:
    """The new rows (the temporary table) into the model's table, by the incremental strategy."""
    target, temp = relation(node.schema, node.alias), _temp(node)
    existing = db.spark.table(target).columns
    columns = [c for c in db.spark.table(temp).columns if c in existing]  # on_schema_change: ignore
    names = ", ".join(quote(c) for c in columns)
    keys = unique_key(node)
    match = " and ".join(f"target.{quote(k)} <=> source.{quote(k)}" for k in keys)
    if strategy == "merge":
        updates = ", ".join(f"target.{quote(c)} = source.{quote(c)}" for c in columns if c not in keys)
        matched = f"when matched then update set {updates} " if updates else ""
        db.spark.sql(f"merge into {target} as target using {temp} as source on {match} {matched}"
                     f"when not matched then insert ({names}) values ({', '.join('source.' + quote(c) for c in columns)})")
    elif strategy == "delete+insert" and _format(db) != "parquet":
        db.spark.sql(f"delete from {target} as target where exists (select 1 from {temp} as source where {match})")
        db.spark.sql(f"insert into {target} ({names}) select {names} from {temp}")
    elif strategy == "delete+insert":  # parquet has no DELETE: the kept rows plus the new ones, swapped in
        kept = f"select {names} from {target} as target where not exists (select 1 from {temp} as source where {match})"
        rebuilt = relation(node.schema, f"{node.alias}__sqlsynth_new")
        db.spark.sql(f"drop table if exists {rebuilt}")
        db.spark.sql(f"create table {rebuilt} using parquet{_partitioning(node)} as\n"
                     f"{kept}\nunion all\nselect {names} from {temp}")
        db.spark.sql(f"drop table {temp}")
        db.spark.sql(f"alter table {rebuilt} rename to {temp}")
        _swap_in(db, node)
    else:
        verb = "insert overwrite table" if strategy == "insert_overwrite" else "insert into"
        db.spark.sql(f"{verb} {target} ({names}) select {names} from {temp}")


def arrow_table(frame: Any) -> Any:
    """The DataFrame's rows as an Arrow table (DataFrame.toArrow is pyspark 4; 3.5 has the batches)."""
    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    return pa.Table.from_batches(frame._collect_as_arrow(), schema=to_arrow_schema(frame.schema))


def _write_local(frame: Any, path: Path, fmt: str) -> None:
    """One file, as DuckDB's COPY writes it (rows in the query's order), written aside then renamed."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data = arrow_table(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        if EXPORT_FORMATS[fmt] == "json":
            with temp.open("w", encoding="utf-8") as handle:
                for row in data.to_pylist():
                    # compact, as DuckDB writes JSON lines: the same records give the same file
                    handle.write(json.dumps(row, ensure_ascii=False, default=str, separators=(",", ":")) + "\n")
        elif EXPORT_FORMATS[fmt] == "csv":
            pacsv.write_csv(data, temp)
        else:
            pq.write_table(data, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def build_external(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    """A file in the project (one file, via the driver) or a folder at a URI the cluster writes
    (s3://, abfss://, dbfs:/ ...: Spark's own writer, part files); the relation is a view of the query."""
    frame = db.spark.sql(sql)
    location = str(node.config.get("location") or "")
    if "://" in location or location.startswith("dbfs:"):
        fmt = str(node.config.get("format") or "parquet").lower()
        writer = frame.write.mode("overwrite")
        writer.format(EXPORT_FORMATS.get(fmt, fmt)).save(location)
        shown = location
    else:
        path, fmt = export_path(node, db.project.dir, db.project.target_dir)
        if is_outside(path, db.project.dir, db.project.target_dir):  # the opt-in; no DuckDB file to record in
            check_export_target(None, node, path.with_name(f".{path.name}.sqlsynth-new"), db.project.dir,
                                db.project.target_dir)
        _write_local(frame, path, fmt)
        shown = os.path.relpath(path, db.project.dir) if path.is_relative_to(db.project.dir) else str(path)
    rows = db.spark.sql(f"select count(*) from ({sql})").collect()[0][0]
    build_view(db, node, sql)
    return rows, f"{rows:,} rows → {shown}"


MATERIALIZERS = {"view": build_view, "table": build_table, "ephemeral": build_ephemeral,
                 "incremental": build_incremental, "external": build_external}


def _seed_batches(db: SparkDatabase, node: Node) -> Any:
    """The seed as DuckDB reads it (same types as a DuckDB build), as Arrow record batches."""
    import duckdb

    con = duckdb.connect(":memory:")
    suffix = Path(node.original_file_path).suffix.lower()
    readers = registry().seed_readers
    if suffix in readers:
        reader = readers[suffix](db.project.dir / node.original_file_path, node.original_file_path,
                                      node.config)
        con.register("__sqlsynth_seed", reader)
        select_sql = "select * from __sqlsynth_seed"
    else:
        select_sql = seed_select(node, db.project.dir)
    try:
        return con, con.sql(select_sql).to_arrow_reader(ARROW_BATCH_ROWS)
    except duckdb.Error as exc:
        con.close()
        raise SeedError(f"cannot load seed: {str(exc).splitlines()[0]}", path=node.original_file_path,
                        hint="check the values against column_types in the seed's YAML") from None


def arrow_frame(spark: Any, table: Any) -> Any:
    """A DataFrame of an Arrow table: pyspark 4 takes the table itself; 3.5 (the Spark of the Iceberg
    test, tests/test_spark_iceberg.py) only rows and a schema."""
    import pyspark

    if int(pyspark.__version__.split(".")[0]) >= 4:
        return spark.createDataFrame(table)
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame([tuple(row.values()) for row in table.to_pylist()], from_arrow_schema(table.schema))


def load_seed(db: SparkDatabase, node: Node) -> int:
    import pyarrow as pa

    db.ensure_schema(node.schema)
    con, reader = _seed_batches(db, node)
    try:
        _drop_temp(db, node)
        mode = "overwrite"
        for batch in reader:
            frame = arrow_frame(db.spark, pa.Table.from_batches([batch]))
            frame.write.mode(mode).format(_format(db)).saveAsTable(_temp(node))
            mode = "append"
        if mode == "overwrite":  # no rows: keep the columns
            empty = arrow_frame(db.spark, pa.Table.from_batches([], schema=reader.schema))
            empty.write.format(_format(db)).saveAsTable(_temp(node))
    finally:
        con.close()
    return _swap_in(db, node)

