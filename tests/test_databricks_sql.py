"""The SQL the databricks target runs, compared with checked-in golden files (no workspace needed).

tests/fixtures/databricks is compiled with `--target dbx` (type: databricks); each model's SQL must equal
tests/fixtures/databricks/golden/<model>.sql. After an intended change of the Spark SQL, rewrite them
with SQLSYNTH_UPDATE_GOLDEN=1 and review the diff like code.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import FIXTURES, run_cli

PROJECT = FIXTURES / "databricks"
GOLDEN = PROJECT / "golden"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from sqlsynth.api import Options, compile_nodes

    project = tmp_path_factory.mktemp("dbx") / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("golden", "target"))
    return {node.name: sql for node, sql, _path in compile_nodes(Options(project_dir=project, target_name="dbx"))}


def _models() -> list[str]:
    return sorted(p.stem for p in (PROJECT / "models").glob("*.sql"))


@pytest.mark.parametrize("model", _models())
def test_compiled_sql_equals_the_golden_file(compiled, model):
    golden = GOLDEN / f"{model}.sql"
    if os.environ.get("SQLSYNTH_UPDATE_GOLDEN"):
        golden.write_text(compiled[model] + "\n", encoding="utf-8")
    assert golden.is_file(), f"no golden file for {model}: run with SQLSYNTH_UPDATE_GOLDEN=1"
    assert compiled[model] + "\n" == golden.read_text(encoding="utf-8")


def test_every_golden_file_has_its_model():
    assert sorted(p.stem for p in GOLDEN.glob("*.sql")) == _models()


def test_compile_needs_no_workspace_and_no_token(tmp_path):
    """`sqlsynth compile --target dbx` prints the Spark SQL without connecting (no token set)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("golden", "target"))
    assert "DATABRICKS_TOKEN" not in os.environ
    done = run_cli("compile", "--target", "dbx", "-s", "customer_orders", cwd=project)
    assert done.returncode == 0, done.stderr
    assert (GOLDEN / "customer_orders.sql").read_text().strip() in done.stdout


def test_native_endpoints_pass_through_only_on_the_databricks_target(compiled, tmp_path):
    """On databricks the call is Databricks' ai_query on the serving endpoint; on spark it is not."""
    assert "AI_QUERY(\n      'databricks-meta-llama-3-3-70b-instruct'" in compiled["order_notes"]
    assert "'teacher'" not in compiled["order_notes"] and "'llama'" not in compiled["order_labels"]
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("golden", "target"))
    other = run_cli("compile", "--target", "spark", "-s", "order_notes", cwd=project)
    assert "databricks-meta-llama-3-3-70b-instruct" not in other.stdout + other.stderr


QUERIES = {  # struct fields selected out: DuckDB returns dicts, Spark Rows
    "stg_orders": "select id, customer, status from main.stg_orders",
    "customer_orders": "select customer, statuses, orders, id_range.first, id_range.last, any_gift "
                       "from main.customer_orders",
    "order_items": "select id, item.sku, item.qty, gift from main.order_items",
    "order_lists": "select * from main.order_lists",  # DuckDB list functions and lambdas (spark_lists.py)
}


@pytest.mark.spark
def test_the_golden_sql_runs_on_spark_with_duckdbs_rows(tmp_path):
    """What the databricks target would run, run by real Spark: same rows as the DuckDB build."""
    import duckdb

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark local mode needs Java 17")
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("golden", "target"))
    # the serving-endpoint models run only on Databricks (open-source Spark has no ai_query of its own)
    assert run_cli("build", "--exclude", "tag:serving_endpoint", cwd=project).returncode == 0
    built = run_cli("build", "--target", "spark", "--exclude", "tag:serving_endpoint", cwd=project, timeout=900)
    assert built.returncode == 0, built.stderr
    from sqlsynth.api import Options, load
    from sqlsynth.targets.spark_session import open_session

    loaded, _ = load(Options(project_dir=project, target_name="spark"))
    spark = open_session("spark", loaded.target, loaded.target_dir / "spark")
    try:
        spark_rows = {name: [list(row) for row in spark.sql(query).collect()] for name, query in QUERIES.items()}
    finally:
        spark.stop()  # later tests in this process start their own session on their own metastore
    with duckdb.connect(str(project / "target" / "dbx.duckdb"), read_only=True) as con:
        for name, query in QUERIES.items():
            expected = sorted(map(list, con.execute(query).fetchall()), key=repr)
            assert sorted(spark_rows[name], key=repr) == expected, name


def test_a_list_function_without_a_spark_spelling_is_refused_at_compile_time(tmp_path):
    """DuckDB's list_zip has no rewrite (Spark's arrays_zip names the struct fields differently): the
    compile fails naming the model, its line and the higher-order functions to write instead."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("golden", "target"))
    (project / "models" / "zipped.sql").write_text(
        "select id,\n       list_zip([id], [status]) as pairs\nfrom {{ ref('stg_orders') }}\n")
    done = run_cli("compile", "--target", "dbx", "-s", "zipped", cwd=project)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "models/zipped.sql:2" in message and "list_zip()" in message, message
    assert "transform, filter, aggregate, zip_with" in message and "Traceback" not in message, message
