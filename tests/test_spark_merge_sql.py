"""The statements table and incremental models send to Spark for a Delta table, pinned as written (golden SQL).

No Delta Lake jars are reachable here (Maven Central is not; the delta-spark wheel has none), so Delta is
checked by its SQL only; the same code path runs for real on Iceberg in tests/test_spark_iceberg.py. The
Spark session is a recorder (Spark is outside the project): it keeps the statements and answers the two
questions build_incremental asks (does the table exist, which columns it has)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from sqlsynth.project import load_project
from sqlsynth.targets import SparkTarget
from sqlsynth.targets.spark_database import SparkDatabase
from sqlsynth.targets.spark_materialize import build_incremental, build_table

FIXTURE = Path(__file__).parent / "fixtures" / "iceberg"
QUERY = "select id, name, score from `main`.`people` where id >= 2"
TEMP = "`main`.`{model}__sqlsynth_tmp`"


class RecordingSpark:
    def __init__(self, columns: list[str]):
        self.statements: list[str] = []
        self.columns, self.catalog = columns, self

    def sql(self, text: str) -> RecordingSpark:
        self.statements.append(text)
        return self

    def table(self, name: str) -> RecordingSpark:
        return self

    def count(self) -> int:
        return 3

    def collect(self) -> list[tuple]:  # describe table extended: the existing table is a Delta table
        return [("Provider", "delta", "")]

    def tableExists(self, name: str) -> bool:  # noqa: N802 (pyspark's name)
        return True

    def getTable(self, name: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(tableType="MANAGED")


@pytest.fixture()
def delta(tmp_path, monkeypatch):
    monkeypatch.setenv("ICEBERG_JARS", "unused.jar")
    shutil.copytree(FIXTURE, tmp_path / "p")
    project = load_project(tmp_path / "p")
    project.target_name, project.target = "delta", SparkTarget(type="spark", table_format="delta")
    spark = RecordingSpark(["id", "name", "score"])
    return SparkDatabase(project, spark), spark


def test_merge_on_delta(delta):
    db, spark = delta
    rows, message = build_incremental(db, db.project.nodes["model.iceberg_fixture.people_merge"], QUERY)
    temp = TEMP.format(model="people_merge")
    assert spark.statements == [
        f"drop table if exists {temp}",
        f"create table {temp} using delta as\n{QUERY}",
        f"merge into `main`.`people_merge` as target using {temp} as source on target.`id` <=> source.`id` "
        "when matched then update set target.`name` = source.`name`, target.`score` = source.`score` "
        "when not matched then insert (`id`, `name`, `score`) values (source.`id`, source.`name`, source.`score`)",
        f"drop table if exists {temp}",
    ]
    assert (rows, message) == (3, "3 rows merge")


def test_delete_insert_on_delta(delta):
    db, spark = delta
    build_incremental(db, db.project.nodes["model.iceberg_fixture.people_replace"], QUERY)
    temp = TEMP.format(model="people_replace")
    assert spark.statements[2:] == [
        f"delete from `main`.`people_replace` as target where exists (select 1 from {temp} as source "
        "where target.`id` <=> source.`id`)",
        f"insert into `main`.`people_replace` (`id`, `name`, `score`) select `id`, `name`, `score` from {temp}",
        f"drop table if exists {temp}",
    ]


def test_table_is_replaced_in_one_statement_on_delta(delta):
    db, spark = delta
    build_table(db, db.project.nodes["model.iceberg_fixture.people_table"], QUERY)
    temp = TEMP.format(model="people_table")
    assert spark.statements == [
        f"drop table if exists {temp}",
        f"create table {temp} using delta as\n{QUERY}",
        "describe table extended `main`.`people_table`",
        f"create or replace table `main`.`people_table` using delta as select * from {temp}",
        f"drop table if exists {temp}",
    ]


def test_merge_on_parquet_is_refused(delta):
    from sqlsynth.errors import ConfigError

    db, spark = delta
    db.project.target = SparkTarget(type="spark", table_format="parquet")
    with pytest.raises(ConfigError, match="needs table_format delta or iceberg"):
        build_incremental(db, db.project.nodes["model.iceberg_fixture.people_merge"], QUERY)
    assert spark.statements == []
