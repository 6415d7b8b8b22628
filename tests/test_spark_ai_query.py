"""Staged ai_query on real Apache Spark (local[2]) with the project's OpenAI-compatible stub server.

The same project is built by the real CLI on DuckDB and on Spark: the tables are equal row for row,
both engines put the same keys in their cache, a Spark re-run sends nothing, new seed rows send only
their own requests, and a build killed (kill -9) half way re-pays nothing it had answered.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import run_cli

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark local mode needs Java 17 (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

TABLES = ["questions", "responses", "responses_db"]
MODELS = {
    # structured output, a CTE, and a typed struct read downstream
    "questions.sql": """{{ config(materialized='table') }}
with answered as (
  select id, topic, ai_query('teacher', 'Questions about ' || topic,
                   responseFormat := 'STRUCT<reasoning: STRING, questions: ARRAY<STRING>>',
                   modelParameters := {'temperature': 0.99, 'max_tokens': 200}) as r
  from {{ ref('items') }}
)
select id, topic, r.reasoning, r.questions from answered""",
    # chat messages, failOnError => false (STRUCT(result, errorMessage, finishReason)), DuckDB indexing
    "responses.sql": """{{ config(materialized='table') }}
select id, q, ai_query('teacher', [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': q}],
                       modelParameters := {'temperature': 0.7, 'max_tokens': 40, 'seed': 7},
                       failOnError := false) as answer
from (select id, questions[1] as q from {{ ref('questions') }})""",
    # Databricks SQL: ai_query with responseFormat returns the JSON string
    "responses_db.sql": """{{ config(materialized='table', dialect='databricks') }}
SELECT id, ai_query('teacher', concat('About ', topic), responseFormat => 'STRUCT<content: STRING>',
       failOnError => false) AS answer
FROM {{ ref('questions') }}""",
}


def write_seed(project: Path, rows: int) -> None:
    with open(project / "seeds" / "items.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "topic"])
        writer.writerows([i, f"topic {i}"] for i in range(rows))


def make_project(root: Path, url: str, rows: int = 12) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "project.yml").write_text(
        "name: p\nendpoints:\n  teacher:\n    provider: openai\n"
        f"    base_url: {url}\n    model: stub\n    max_retries: 2\n    retry_base_s: 0.01\n"
        "targets:\n  spark:\n    type: spark\n    remote: local[2]\n")
    for name, sql in MODELS.items():
        (root / "models" / name).write_text(sql)
    write_seed(root, rows)
    return root


def normalized(value):
    """Spark Rows and DuckDB dicts/tuples as comparable nested tuples."""
    if hasattr(value, "asDict"):
        value = value.asDict(recursive=True)
    if isinstance(value, dict):
        return tuple(sorted((k, normalized(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(normalized(v) for v in value)
    return value


def duckdb_rows(project: Path, table: str) -> list:
    with duckdb.connect(str(project / "target/p.duckdb"), read_only=True) as con:
        result = con.execute(f"select * from main.{table}")
        columns = [d[0] for d in result.description]
        return sorted((normalized(dict(zip(columns, row, strict=True))) for row in result.fetchall()), key=repr)


def spark_rows(spark, table: str) -> list:
    spark.catalog.refreshTable(table)
    return sorted((normalized(row) for row in spark.table(table).collect()), key=repr)


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(ServerConfig(latency_s=0.05)) as running:
        yield running


@pytest.fixture(scope="module")
def built(tmp_path_factory, server):
    """The project built on Spark, re-run on Spark, then built on DuckDB (request counts at the server)."""
    project = make_project(tmp_path_factory.mktemp("sparkai") / "p", server.url)
    first = run_cli("build", "--target", "spark", cwd=project, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    spark_requests = server.stats.requests
    again = run_cli("build", "--target", "spark", cwd=project, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    rerun_requests = server.stats.requests - spark_requests
    duck = run_cli("build", cwd=project, timeout=300)
    assert duck.returncode == 0, duck.stdout + duck.stderr
    return project, spark_requests, rerun_requests, server.stats.requests - spark_requests - rerun_requests


@pytest.fixture(scope="module")
def spark(built):
    """One SparkSession for this module, on the metastore the CLI builds wrote (opened after them)."""
    from sqlsynth.config import parse_project_config
    from sqlsynth.targets.spark_session import open_session

    project = built[0]
    target = parse_project_config({"name": "p", "targets": {"spark": {"type": "spark", "remote": "local[2]"}}})
    session = open_session("spark", target.targets["spark"], project / "target/spark")
    yield session
    session.stop()


def test_spark_tables_equal_duckdb_and_a_rerun_sends_nothing(built, spark):
    project, spark_requests, rerun_requests, duckdb_requests = built
    assert spark_requests == duckdb_requests == 12 + 12 + 12  # distinct requests, each sent once
    assert rerun_requests == 0
    for table in TABLES:
        assert spark_rows(spark, f"main.{table}") == duckdb_rows(project, table), table
    answers = dict(spark_rows(spark, "main.responses")[0])["answer"]
    assert dict(answers)["errorMessage"] is None and dict(answers)["finishReason"] == "stop"


def test_both_engines_cache_under_the_same_keys(built, spark):
    project = built[0]
    with duckdb.connect(str(project / "target/p.duckdb"), read_only=True) as con:
        duck = {row[0] for row in con.execute("select key from sqlsynth.cache").fetchall()}
    spark.catalog.refreshTable("sqlsynth.cache")
    keys = [row[0] for row in spark.table("sqlsynth.cache").select("key").collect()]
    assert len(keys) == len(set(keys)) == 36
    assert set(keys) == duck
    calls = spark.table("sqlsynth.calls").groupBy("status").count().collect()
    assert {row["status"]: row["count"] for row in calls} == {"ok": 36}


def test_compile_shows_the_staged_requests_and_the_join(built):
    project = built[0]
    result = run_cli("compile", "--target", "spark", "-s", "questions", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "-- ai_query stage __sqlsynth_ai_questions_1" in result.stdout
    assert "LEFT JOIN __sqlsynth_ai_questions_1" in result.stdout
    assert "ai_query(" not in result.stdout.lower().replace("-- ai_query stage", "")


def test_a_view_calling_ai_query_is_refused_on_spark(built):
    project = built[0]
    view = project / "models" / "ask_view.sql"
    view.write_text("{{ config(materialized='view') }}\nselect ai_query('teacher', topic) as a\n"
                    "from {{ ref('items') }}\n")
    try:
        result = run_cli("compile", "--target", "spark", "-s", "ask_view", cwd=project)
    finally:
        view.unlink()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "models/ask_view.sql" in result.stderr and "materialize" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_seed_rows_send_only_their_requests(tmp_path, server):
    project = make_project(tmp_path / "p", server.url, rows=4)
    first = run_cli("build", "--target", "spark", "-s", "items", "questions", cwd=project, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    before = server.stats.requests
    write_seed(project, 6)
    config = (project / "project.yml").read_text()
    (project / "project.yml").write_text(config.replace("    max_retries: 2\n", "    max_retries: 2\n    max_calls: 1\n"))
    refused = run_cli("build", "--target", "spark", "-s", "items", "questions", cwd=project, timeout=900)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "2 uncached calls needed now" in refused.stdout + refused.stderr  # counted before sending any
    assert server.stats.requests == before
    (project / "project.yml").write_text(config)
    more = run_cli("build", "--target", "spark", "-s", "items", "questions", cwd=project, timeout=900)
    assert more.returncode == 0, more.stdout + more.stderr
    assert server.stats.requests - before == 2
    assert "LLM: 2 calls, 4 cached" in more.stderr + more.stdout


def test_kill_9_half_way_then_rerun_repays_nothing_answered(tmp_path):
    """A slow server; the build is killed once some answers were spooled; the re-run sends only the rest."""
    with OpenAIServer(ServerConfig(latency_s=1.0)) as slow:
        project = make_project(tmp_path / "p", slow.url, rows=40)
        (project / "project.yml").write_text((project / "project.yml").read_text().replace(
            "    max_retries: 2\n", "    max_retries: 2\n    max_concurrency: 4\n"))
        env = {**os.environ, "NO_COLOR": "1"}
        process = subprocess.Popen([sys.executable, "-m", "sqlsynth", "build", "--target", "spark", "-s", "items",
                                    "questions"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 600
        while slow.stats.requests < 12 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # the driver, its JVM and the Python workers
        process.wait()
        answered_before_kill = slow.stats.statuses.get(200, 0)
        assert 0 < answered_before_kill < 40
        sent_before = slow.stats.requests
        spooled = len(list((project / "target/spark/ai_spool/cache").glob("*.parquet")))
        assert spooled > 0
        rerun = run_cli("build", "--target", "spark", "-s", "items", "questions", cwd=project, timeout=900)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        resent = slow.stats.requests - sent_before
        # only rows not answered before the kill: those in flight or not yet flushed are sent again
        assert resent <= 40 - answered_before_kill + 8
        assert resent < 40
        uninterrupted = run_cli("build", "-s", "items", "questions", cwd=project, timeout=300)  # on DuckDB
        assert uninterrupted.returncode == 0, uninterrupted.stderr
    files = project / "target/spark/warehouse/main.db/questions"
    with duckdb.connect() as con:
        result = con.execute(f"select * from read_parquet('{files}/*.parquet')")
        columns = [d[0] for d in result.description]
        killed_then_rerun = sorted((normalized(dict(zip(columns, r, strict=True))) for r in result.fetchall()), key=repr)
    assert killed_then_rerun == duckdb_rows(project, "questions")


def test_a_duckdb_cache_exported_and_imported_answers_a_spark_run_with_no_calls(tmp_path, server):
    """The cache key (endpoint provider, base_url and model, format, messages, parameters) is one function
    on both engines: answers paid on DuckDB, moved with cache export/import, are not paid again on Spark."""
    project = make_project(tmp_path / "p", server.url, rows=5)
    duck = run_cli("build", "-s", "items", "questions", cwd=project, timeout=300)
    assert duck.returncode == 0, duck.stdout + duck.stderr
    exported = run_cli("cache", "export", str(tmp_path / "answers.parquet"), cwd=project)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    imported = run_cli("cache", "import", str(tmp_path / "answers.parquet"), "--target", "spark", cwd=project,
                       timeout=900)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    before = server.stats.requests
    spark_run = run_cli("build", "--target", "spark", "-s", "items", "questions", cwd=project, timeout=900)
    assert spark_run.returncode == 0, spark_run.stdout + spark_run.stderr
    assert server.stats.requests == before
    assert "LLM: 0 calls, 5 cached" in spark_run.stderr + spark_run.stdout


def test_staged_ai_query_through_a_spark_connect_server(tmp_path, server):
    """remote: sc://... against a real Spark Connect server started once (as a cluster is): same tables as
    DuckDB, each request sent once, a re-run sends nothing."""
    from sqlsynth.testing.spark_connect import spark_connect_server

    project = make_project(tmp_path / "p", server.url, rows=6)
    with spark_connect_server(2, state=tmp_path / "connect") as remote:
        (project / "project.yml").write_text((project / "project.yml").read_text().replace(
            "remote: local[2]", f"remote: {remote}\n    ai_spool: {tmp_path / 'spool'}"))
        before = server.stats.requests
        for _ in range(2):
            built = run_cli("build", "--target", "spark", "-s", "items", "questions", "responses", cwd=project,
                            timeout=900)
            assert built.returncode == 0, built.stdout + built.stderr
            assert server.stats.requests - before == 6 + 6  # the re-run added none
    duck = run_cli("build", "-s", "items", "questions", "responses", cwd=project, timeout=300)
    assert duck.returncode == 0, duck.stdout + duck.stderr
    # this process already holds a classic session (no remote one beside it): read the server's table files
    for table in ("questions", "responses"):
        with duckdb.connect() as con:
            result = con.execute(f"select * from read_parquet('{tmp_path}/connect/warehouse/main.db/{table}/*.parquet')")
            columns = [d[0] for d in result.description]
            rows = sorted((normalized(dict(zip(columns, r, strict=True))) for r in result.fetchall()), key=repr)
        assert rows == duckdb_rows(project, table), table
