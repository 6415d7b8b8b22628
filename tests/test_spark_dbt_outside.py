"""The jaffle-shop-style fixture (dbt_shop) on real Apache Spark (local mode): seeds in their `raw`
schema, dbt.* cross-database macros transpiled (dateadd with a computed amount, datediff, date_trunc),
unit tests really run, and every relation equal to the DuckDB build."""

import decimal
import json
import shutil

import duckdb
import pytest
from spark_support import local_session, require_local_spark

from conftest import FIXTURES, run_cli

pytestmark = pytest.mark.spark
require_local_spark()

LOAD = ("--vars", '{"load_source_data": true}')
RELATIONS = ["raw.raw_orders", "raw.raw_items", "main.stg_orders", "main.stg_order_items", "main.order_items",
             "main.orders", "main.date_spine"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = tmp_path_factory.mktemp("spark_shop") / "dbt_shop"
    shutil.copytree(FIXTURES / "dbt_shop", project, ignore=shutil.ignore_patterns("target"))
    with (project / "project.yml").open("a") as handle:
        handle.write("targets:\n  spark:\n    type: spark\n    remote: local[1]\n")
    runs = {}
    for target in ("spark", "duckdb"):
        extra = ("--target", target) if target == "spark" else ()
        seeded = run_cli("seed", *LOAD, *extra, cwd=project, timeout=600)
        assert seeded.returncode == 0, seeded.stderr
        runs[target] = run_cli("build", *extra, cwd=project, timeout=600)
        if target == "spark":
            runs["spark_results"] = json.loads((project / "target/run_results.json").read_text())
    return project, runs


def _normal(rows) -> list[tuple]:
    def one(value):
        return float(value) if isinstance(value, decimal.Decimal) else value
    return sorted((tuple(one(v) for v in row) for row in rows), key=repr)


def test_the_project_builds_on_spark_and_runs_its_unit_tests(built):
    _, runs = built
    assert runs["spark"].returncode == 0, runs["spark"].stderr
    assert "OK=5 PASS=7 TOTAL=12" in runs["spark"].stderr
    units = {r["unique_id"].rsplit(".", 1)[-1]: r for r in runs["spark_results"]["results"]
             if r["unique_id"].startswith("unit_test.")}
    assert set(units) == {"test_ordered_at_truncates_to_day", "test_order_items_compute_to_bools"}
    assert all(r["status"] == "pass" for r in units.values()), units


def test_every_relation_equals_the_duckdb_build(built):
    project, runs = built
    assert runs["duckdb"].returncode == 0, runs["duckdb"].stderr
    with local_session(project / "target/spark") as spark, \
            duckdb.connect(str(project / "target/shop.duckdb"), read_only=True) as con:
        for name in RELATIONS:
            expected = con.execute(f"select * from {name}")
            columns = [d[0] for d in expected.description]
            frame = spark.table(name)
            assert frame.columns == columns, name
            assert _normal(frame.collect()) == _normal(expected.fetchall()), name
