"""project.yml targets:, --target, and the Spark SQL compiler (no JVM needed here)."""

import duckdb
import pytest

from sqlsynth.config import parse_project_config
from sqlsynth.errors import ConfigError

from conftest import run_cli

SPARK_TARGETS = """
targets:
  dev:
    type: duckdb
  spark:
    type: spark
    remote: local[2]
"""


def assert_clean_error(result, *needles, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_targets_parse_with_defaults():
    config = parse_project_config({"name": "p", "target": "s", "targets": {
        "s": {"type": "spark", "remote": "sc://spark.example:15002", "token_env": "TOK", "schema": "gold",
              "table_format": "delta", "spark_conf": {"spark.sql.ansi.enabled": True}},
        "db": {"type": "databricks", "host": "https://adb.example", "token_env": "DBT", "serverless": True}}})
    spark = config.targets["s"]
    assert (spark.remote, spark.schema_, spark.table_format) == ("sc://spark.example:15002", "gold", "delta")
    assert spark.spark_conf == {"spark.sql.ansi.enabled": "true"}
    assert config.targets["db"].serverless and config.target == "s"


@pytest.mark.parametrize("target, message", [
    ({"type": "spark", "remot": "local[1]"}, "did you mean 'remote'?"),
    ({"type": "spark", "remote": "http://x"}, "remote must be local[N] or sc://host:port"),
    ({"type": "spark", "table_format": "orc"}, "table_format"),
    ({"type": "databricks", "host": "h", "token_env": "T", "cluster_id": "c", "serverless": True}, "not both"),
    ({"type": "postgres"}, "'duckdb', 'spark', 'databricks'"),
])
def test_bad_target_config_is_one_clear_error(target, message):
    with pytest.raises(ConfigError) as info:
        parse_project_config({"name": "p", "targets": {"t": target}})
    assert message in info.value.format()


def test_unknown_target_lists_the_known_ones(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGETS)
    result = run_cli("run", "--target", "prod", cwd=project)
    assert_clean_error(result, "unknown target 'prod'", "known targets: dev, duckdb, spark")
    (project / "project.yml").write_text((project / "project.yml").read_text() + "target: nope\n")
    assert_clean_error(run_cli("ls", cwd=project), "unknown target 'nope' (project.yml target:)")


def test_duckdb_target_is_the_default_and_may_name_its_file(fixture_project):
    project = fixture_project("jaffle")
    text = (project / "project.yml").read_text()
    (project / "project.yml").write_text(text + "targets:\n  dev:\n    type: duckdb\n    database: target/dev.duckdb\n")
    assert run_cli("seed", "--target", "dev", cwd=project).returncode == 0
    with duckdb.connect(str(project / "target/dev.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from main.raw_customers").fetchone()[0] == 50
    assert run_cli("seed", cwd=project).returncode == 0  # no target: → the project's own DuckDB file
    assert (project / "target/jaffle_shop.duckdb").exists()


def test_compile_for_spark_shows_the_spark_sql(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGETS)
    (project / "models/marts/agg.sql").write_text(
        "select string_agg(first_name, '|') as names,\n"
        "       from_json('{\"a\": 1}', '{\"a\": \"INTEGER\", \"b\": [\"VARCHAR\"]}') as parsed\n"
        "from {{ ref('stg_customers') }}\n")
    result = run_cli("compile", "--target", "spark", "-s", "agg stg_payments", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "ARRAY_JOIN(COLLECT_LIST(first_name), '|')" in result.stdout
    assert "FROM_JSON('{\"a\": 1}', '`a` INT, `b` array<STRING>')" in result.stdout
    assert "FROM `main`.`stg_customers`" in result.stdout
    assert "AS DECIMAL(16, 2)) AS amount" in result.stdout
    compiled = project / "target/compiled/jaffle_shop/models/marts/agg.sql"
    assert "COLLECT_LIST" in compiled.read_text()


def test_spark_dialect_models_run_as_written(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGETS)
    (project / "models/marts/native.sql").write_text(
        "{{ config(dialect='spark') }}\nselect named_struct('n', count(*)) as s from {{ ref('stg_orders') }}\n")
    result = run_cli("compile", "--target", "spark", "-s", "native", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "select named_struct('n', count(*)) as s from `main`.`stg_orders`" in result.stdout


@pytest.mark.parametrize("body, needles", [
    ("{{ config(materialized='view') }}\nselect 1 as a,\n  ai_query('teacher', 'hi') as answer",
     ["models/marts/bad.sql:3", "materialize the model that calls ai_query as a table"]),
    ("{{ config(materialized='table') }}\nselect ai_query('default', 'hi') as answer",
     ["models/marts/bad.sql", "in-process model (provider: transformers)", "serve the model over HTTP"]),
    ("{{ config(materialized='table') }}\nselect * from (select ai_query(first_name, 'hi') as answer\n"
     "from {{ ref('stg_customers') }})",
     ["ai_query inside a subquery", "into a CTE"]),
    ("select\n  1 as a,\n  hash(a) as h from (select 1 as a)",
     ["models/marts/bad.sql:3", "md5(cast(x as varchar))"]),
    ("{{ config(materialized='view') }}\nselect html_to_text('<p>x</p>') as t",
     ["models/marts/bad.sql:2", "persistent view (view model) cannot call", "materialized='table'"]),
    ("select 1 as a,\n  retrieve('docs', 'q', 3) as hits", ["models/marts/bad.sql:2", "single-machine in this release"]),
    ("{{ config(materialized='vector_index', collection='docs', id_column='a', search_column='t') }}\n"
     "select 1 as a, 'x' as t", ["materialized='vector_index' is single-machine in this release", "--target duckdb"]),
    ("{{ config(materialized='incremental', unique_key='a') }}\nselect 1 as a",
     ["incremental_strategy 'merge' needs table_format delta or iceberg", "delete+insert"]),
])
def test_non_portable_models_are_refused_at_compile_time(fixture_project, body, needles):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGETS)
    (project / "models/marts/bad.sql").write_text(body + "\n")
    result = run_cli("compile", "--target", "spark", "-s", "bad", cwd=project)
    assert_clean_error(result, "model 'bad'", *needles)
    assert run_cli("compile", "-s", "bad", cwd=project).returncode in (0, 2)  # DuckDB compiles it or not


def test_missing_token_env_names_target_and_fix(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + (
        "targets:\n  cluster:\n    type: spark\n    remote: sc://127.0.0.1:1\n    token_env: SQLSYNTH_TEST_NO_TOKEN\n"))
    result = run_cli("build", "--target", "cluster", cwd=project, env={"SQLSYNTH_TEST_NO_TOKEN": ""})
    assert_clean_error(result, "target 'cluster'", "SQLSYNTH_TEST_NO_TOKEN", "export SQLSYNTH_TEST_NO_TOKEN=")


def test_unreachable_spark_connect_is_one_message(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + (
        "targets:\n  cluster:\n    type: spark\n    remote: sc://127.0.0.1:1\n"))
    result = run_cli("run", "--target", "cluster", cwd=project, timeout=60)
    assert_clean_error(result, "target 'cluster'", "cannot reach Spark Connect at 127.0.0.1:1", "remote:")


def test_a_spark_target_without_pyspark_names_the_extra(monkeypatch):
    import importlib.util

    from sqlsynth.targets import spark_session

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    target = parse_project_config({"name": "p", "targets": {"s": {"type": "spark"}}}).targets["s"]
    with pytest.raises(ConfigError) as info:
        spark_session.open_session("s", target, None)
    assert "pip install 'sqlsynth[spark]'" in info.value.format()
