"""This repo's bank pipeline on real Apache Spark (local[2]) against the stub teacher, up to the teacher's
answers (seeds → prompts → synth_questions → synth_responses, both incremental, staged ai_query): the
tables equal the DuckDB build's row for row, a re-run makes no call and two new seed rows make calls for
those rows only. The quality gates after synth_responses (response_quality) need embed(), a Python
function that is not registered on Spark yet, so chat_formatted and the JSONL export stay DuckDB-only."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest
from test_spark_ai_query import normalized, spark_rows

from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import run_cli
from test_bank_pipeline import STUB_VARS, copy_project

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark local mode needs Java 17 (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

TABLES = ["seed_examples", "bank_rules", "synth_questions", "synth_responses", "synth_responses_databricks"]
# valid_chat (macros/bank_tests.sql) is written with DuckDB's list lambdas, which have no Spark spelling yet
SELECTION = ("--select", "+synth_responses", "synth_responses_databricks",
             "--exclude", "response_quality+", "valid_chat_synth_responses_messages",
             "valid_chat_synth_responses_databricks_messages")
SPARK_TARGET = "\ntargets:\n  spark:\n    type: spark\n    remote: local[2]\n"


def build(project, *args: str):
    return run_cli("build", "--vars", STUB_VARS, *SELECTION, *args, cwd=project, timeout=1800)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Spark build, DuckDB build of a copy, Spark re-run, Spark build with 2 more seed rows."""
    with OpenAIServer(ServerConfig()) as server:
        root = tmp_path_factory.mktemp("sparkbank")
        project = copy_project(root / "bank", server.url)
        (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGET)
        duck = root / "duck"
        shutil.copytree(project, duck)
        first = build(project, "--target", "spark")
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-3000:]
        done = build(duck)
        assert done.returncode == 0, done.stdout[-3000:]
        before = server.stats.requests
        again = build(project, "--target", "spark")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        rerun = server.stats.requests - before
        with open(project / "seeds" / "seed_examples.csv", "a", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([
                [901, "card_arrival", "Can someone else collect my new card for me?", "yes"],
                [902, "crypto_tips", "Which coin should I buy with my bonus?", "no"]])
        before = server.stats.requests
        grown = build(project, "--target", "spark")
        assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
        return project, duck, rerun, server.stats.requests - before


@pytest.fixture(scope="module")
def spark(built):
    from sqlsynth.config import parse_project_config
    from sqlsynth.targets.spark_session import open_session

    target = parse_project_config({"name": "p", "targets": {"spark": {"type": "spark", "remote": "local[2]"}}})
    session = open_session("spark", target.targets["spark"], built[0] / "target/spark")
    yield session
    session.stop()


def duckdb_rows(project, table: str, where: str = "") -> list:
    with duckdb.connect(str(project / "target/bank_assistant.duckdb"), read_only=True) as con:
        result = con.execute(f"select * from main.{table} {where}")
        columns = [d[0] for d in result.description]
        return sorted((normalized(dict(zip(columns, row, strict=True))) for row in result.fetchall()), key=repr)


def test_rerun_makes_no_call_and_new_seeds_call_for_themselves_only(built):
    *_, rerun, grown = built
    assert rerun == 0
    assert grown == 2 + 2 * 3  # 2 question calls + one response per new question (2 generated + 1 seed each)


def test_tables_equal_the_duckdb_build_row_for_row(built, spark):
    project, duck, *_ = built
    for table in TABLES:
        rows = spark_rows(spark, f"main.{table}")
        new = [r for r in rows if dict(r).get("seed_id") in (901, 902)]
        assert [r for r in rows if r not in new] == duckdb_rows(duck, table), table
