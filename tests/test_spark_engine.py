"""The jaffle fixture on real Apache Spark (local mode): same tables as DuckDB, tests, safe swaps."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from spark_support import module_session, require_local_spark

from conftest import FIXTURES, run_cli

pytestmark = pytest.mark.spark
require_local_spark()

TABLES = ["raw_customers", "raw_orders", "raw_payments", "stg_customers", "stg_orders", "stg_payments",
          "customers", "orders"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """jaffle built by the real CLI on DuckDB and on Spark (each command one process)."""
    project = tmp_path_factory.mktemp("spark") / "jaffle"
    shutil.copytree(FIXTURES / "jaffle", project, ignore=shutil.ignore_patterns("target"))
    with (project / "project.yml").open("a") as handle:
        handle.write("targets:\n  spark:\n    type: spark\n    remote: local[2]\n")
    spark_run = run_cli("build", "--target", "spark", cwd=project, timeout=600)
    duck_run = run_cli("build", cwd=project)
    assert duck_run.returncode == 0, duck_run.stderr
    return project, spark_run


spark = module_session("built", lambda built: built[0] / "target/spark")


def _rows(rows) -> list[tuple]:
    return sorted((tuple(row) for row in rows), key=repr)


def test_jaffle_builds_and_tests_on_spark_with_the_same_tables(built, spark):
    project, result = built
    assert result.returncode == 0, result.stderr
    assert "OK=8 PASS=18" in result.stderr
    assert "WARNING: Using incubator modules" not in result.stderr  # the JVM's start-up line (spark_jvm.py)
    results = json.loads((project / "target/run_results.json").read_text())  # the DuckDB build's, last
    assert len(results["results"]) == 26
    with duckdb.connect(str(project / "target/jaffle_shop.duckdb"), read_only=True) as con:
        for table in TABLES:
            expected = con.execute(f"select * from main.{table}")
            columns = [d[0] for d in expected.description]
            frame = spark.table(f"main.{table}")
            assert frame.columns == columns, table
            assert _rows(frame.collect()) == _rows(expected.fetchall()), table
    kinds = {t.name: t.tableType for t in spark.catalog.listTables("main")}
    assert kinds["stg_orders"] == "VIEW" and kinds["orders"] == "MANAGED"


def test_a_failed_table_build_keeps_the_previous_table(built, spark):
    from sqlsynth.api import Options, execute
    from sqlsynth.run_progress import Reporter

    project, _ = built
    model = project / "models/marts/customers.sql"
    model.write_text(model.read_text().replace("customers.first_name,", "customers.no_such_column,"))
    report = execute("run", Options(project_dir=project, select=["customers"], target_name="spark"),
                     Reporter(quiet=True))
    assert [r.status for r in report.results] == ["error"]
    assert "no_such_column" in report.results[0].message
    assert spark.table("main.customers").count() == 50
    assert "first_name" in spark.table("main.customers").columns
    assert not spark.catalog.tableExists("main.customers__sqlsynth_tmp")


def test_a_failing_data_test_reports_rows_on_spark(built, spark):
    from sqlsynth.api import Options, execute
    from sqlsynth.run_progress import Reporter

    project, _ = built
    singular = project / "tests/assert_few_orders.sql"
    singular.write_text("select order_id from {{ ref('orders') }} where order_id > 97\n")
    report = execute("test", Options(project_dir=project, select=["assert_few_orders"], target_name="spark"),
                     Reporter(quiet=True))
    assert [(r.status, r.failures) for r in report.results] == [("fail", 2)]
    assert sorted(report.results[0].sample_rows) == [(98,), (99,)]
    Path(singular).unlink()
