"""What the DAG runner and data tests need from a database, on a SparkSession."""

from __future__ import annotations

import re
from typing import Any

from ..project import Project


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def relation(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def java_error(text: str) -> str | None:
    """pyspark 3.5 (the Iceberg test's Spark) raises a Java error it does not convert as Py4JJavaError, whose
    first line is only 'An error occurred while calling o61.sql.': the message is on the next line, the
    innermost cause (often '[ERROR_CLASS] ...') last."""
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].startswith("An error occurred while calling"):
        return None
    cause = re.search(r"\[[A-Z][A-Z_.]+\] .*", lines[1])
    return cause.group(0) if cause else lines[1].lstrip(": ").split(": ", 1)[-1]


def ensure_schema(spark: Any, schema: str) -> None:
    """Looked up first: Hive's metastore logs a Java stack trace for `if not exists` on an existing schema."""
    if not spark.catalog.databaseExists(schema):
        spark.sql(f"create schema if not exists {quote(schema)}")


class SparkCursor:
    """The DB-API subset the runner and data tests use: execute() → fetchall() / description."""

    def __init__(self, spark: Any):
        self.spark = spark
        self.description: list[tuple] = []
        self._rows: list[tuple] = []

    def execute(self, sql: str, parameters: Any = None) -> SparkCursor:
        frame = self.spark.sql(sql, args=parameters) if parameters else self.spark.sql(sql)
        self.description = [(name,) for name in frame.columns]
        self._rows = [tuple(row) for row in frame.collect()]
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows


class SparkDatabase:
    def __init__(self, project: Project, spark: Any):
        self.project, self.spark = project, spark
        self.full_refresh = False  # set by the runner: incremental models rebuild when true
        self.functions = None  # DuckDB's FunctionContext; Python functions on Spark: spark_udfs.py

    def cursor(self) -> SparkCursor:
        return SparkCursor(self.spark)

    def relation_type(self, schema: str, name: str) -> str | None:
        if not self.spark.catalog.tableExists(f"{quote(schema)}.{quote(name)}"):
            return None
        table = self.spark.catalog.getTable(f"{quote(schema)}.{quote(name)}")
        return "view" if (table.tableType or "").upper() == "VIEW" else "table"

    def ensure_schema(self, schema: str) -> None:
        ensure_schema(self.spark, schema)

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        """A relation's columns with DuckDB types: a unit test's fixtures (in-memory DuckDB) take them."""
        from sqlglot import exp
        from sqlglot.errors import SqlglotError

        if not self.spark.catalog.tableExists(relation(schema, name)):
            return []
        found = []
        for field in self.spark.table(relation(schema, name)).schema.fields:
            try:
                found.append((field.name, exp.DataType.build(field.dataType.simpleString(), dialect="spark")
                              .sql(dialect="duckdb")))
            except SqlglotError:
                continue  # a type DuckDB cannot spell: the fixture's YAML values decide it
        return found

    def interrupt(self) -> None:
        self.spark.sparkContext.cancelAllJobs()
