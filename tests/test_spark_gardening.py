"""The gardening example's corpus path on real Apache Spark (local[2]), through the real CLI: the Stack
Exchange XML seed loads into Spark, corpus_posts calls html_to_text (a Python function registered on the
session), corpus_qa pairs questions and answers, and the Q&A JSONL export equals the DuckDB build's.
The vector indexes and retrieve() are a compile-time error on Spark (single-machine in this release)."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from spark_support import module_session, require_local_spark
from test_cli import assert_clean_error

from conftest import run_cli

pytestmark = pytest.mark.spark
require_local_spark()

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gardening"
SELECTION = ("-s", "+corpus_qa_export", "bad_tokens")
EXPORT = "target/exports/corpus_qa.jsonl"
# a model whose Python function fails in the Spark workers: one line naming the model and the cause
BAD_TOKENS = "select post_id, token_count(body, 'no-such-model') as n from {{ ref('corpus_posts') }}\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The example built up to its export on Spark, and a copy on DuckDB (each command one process)."""
    root = tmp_path_factory.mktemp("sparkgarden")
    project, duck = root / "spark", root / "duck"
    for copy in (project, duck):
        shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("target"))
        (copy / "models/bad_tokens.sql").write_text(BAD_TOKENS)
    spark_run = run_cli("build", "--target", "spark", *SELECTION, cwd=project, timeout=900)
    duck_run = run_cli("build", *SELECTION, cwd=duck, timeout=300)
    return project, duck, spark_run, duck_run


spark = module_session("built", lambda built: built[0] / "target/spark")


def _records(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()), key=repr)


def test_the_corpus_path_builds_on_spark_up_to_the_export(built):
    project, duck, result, duck_result = built
    for run in (result, duck_result):  # everything but the bad model: seed, 3 models, 9 data tests
        assert "OK=4 PASS=9 ERROR=1" in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Traceback" not in run.stdout + run.stderr
    records = _records(project / EXPORT)
    assert len(records) == 6 and {r["category"] for r in records} == {"open_qa"}
    assert records == _records(duck / EXPORT)
    # compact JSON lines, in the model's order: the same file byte for byte
    assert (project / EXPORT).read_bytes() == (duck / EXPORT).read_bytes()


def test_the_tables_equal_duckdb(built, spark):
    project, duck, _, _ = built
    with duckdb.connect(str(duck / "target/gardening.duckdb"), read_only=True) as con:
        for table in ("Posts", "corpus_posts", "corpus_qa"):
            expected = con.execute(f"select * from main.{table}")
            columns = [d[0] for d in expected.description]
            frame = spark.table(f"main.{table}")
            assert frame.columns == columns, table
            assert sorted(map(tuple, frame.collect()), key=repr) == sorted(expected.fetchall(), key=repr), table
    bodies = [row.body for row in spark.table("main.corpus_posts").collect()]
    assert not any("<p>" in body or "&amp;" in body for body in bodies)  # html_to_text ran on Spark


def test_a_failing_python_function_is_one_line_naming_model_and_cause(built):
    _, _, result, _ = built
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "no-such-model" in line]
    assert any("models/bad_tokens.sql" in line and "CorpusError: no tokenizer for model 'no-such-model'" in line
               for line in lines), lines
    assert "An exception was thrown from the Python worker" not in result.stdout + result.stderr


@pytest.mark.parametrize("model, needles", [
    ("corpus_index", ["model 'corpus_index'", "materialized='vector_index' is single-machine in this release",
                      "--target duckdb"]),
    ("grounded_answers", ["model 'grounded_answers'", "models/grounded_answers.sql:9", "retrieve()",
                          "single-machine in this release"]),
    ("corpus_qa", ["model 'corpus_qa'", "models/corpus_qa.sql:44", "retrieve()", "single-machine in this release"]),
])
def test_vector_index_and_retrieve_are_compile_errors_on_spark(tmp_path, model, needles):
    project = tmp_path / "gardening"  # compile on Spark needs no session
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    extra = ("--vars", "{dolly_context: retrieved_passage}") if model == "corpus_qa" else ()
    result = run_cli("compile", "--target", "spark", "-s", model, *extra, cwd=project)
    assert_clean_error(result, *needles)
