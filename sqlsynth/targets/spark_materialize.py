"""Materializations and seeds on Spark. A table is built under a temporary name and swapped in only
after the build succeeded, so a failing build leaves the previous table readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SeedError
from ..extensions import registry
from ..project import Node
from ..seeds import seed_select
from .spark_database import SparkDatabase, relation

ARROW_BATCH_ROWS = 100_000


def _temp(node: Node) -> str:
    return relation(node.schema, f"{node.alias}__sqlsynth_tmp")


def _format(db: SparkDatabase) -> str:
    return getattr(db.project.target, "table_format", "parquet")


def _drop(db: SparkDatabase, node: Node, kind: str | None) -> None:
    if kind:
        db.spark.sql(f"drop {'view' if kind == 'view' else 'table'} if exists {relation(node.schema, node.alias)}")


def _swap_in(db: SparkDatabase, node: Node) -> int:
    """Replace the node's relation with the finished temporary table."""
    _drop(db, node, db.relation_type(node.schema, node.alias))
    db.spark.sql(f"alter table {_temp(node)} rename to {relation(node.schema, node.alias)}")
    return db.spark.table(relation(node.schema, node.alias)).count()


def build_view(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    if db.relation_type(node.schema, node.alias) == "table":
        db.spark.sql(f"create or replace temporary view __sqlsynth_check as\n{sql}")  # fails before the drop
        _drop(db, node, "table")
    db.spark.sql(f"create or replace view {relation(node.schema, node.alias)} as\n{sql}")
    return None, "view"


def build_table(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    db.spark.sql(f"drop table if exists {_temp(node)}")
    db.spark.sql(f"create table {_temp(node)} using {_format(db)} as\n{sql}")
    rows = _swap_in(db, node)
    return rows, f"{rows:,} rows"


def build_ephemeral(db: SparkDatabase, node: Node, sql: str) -> tuple[int | None, str]:
    return None, "ephemeral (inlined as a CTE)"


MATERIALIZERS = {"view": build_view, "table": build_table, "ephemeral": build_ephemeral}


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


def load_seed(db: SparkDatabase, node: Node) -> int:
    import pyarrow as pa

    db.ensure_schema(node.schema)
    con, reader = _seed_batches(db, node)
    try:
        db.spark.sql(f"drop table if exists {_temp(node)}")
        mode = "overwrite"
        for batch in reader:
            frame = db.spark.createDataFrame(pa.Table.from_batches([batch]))
            frame.write.mode(mode).format(_format(db)).saveAsTable(_temp(node))
            mode = "append"
        if mode == "overwrite":  # no rows: keep the columns
            empty = db.spark.createDataFrame(pa.Table.from_batches([], schema=reader.schema))
            empty.write.format(_format(db)).saveAsTable(_temp(node))
    finally:
        con.close()
    return _swap_in(db, node)

