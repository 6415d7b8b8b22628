"""This repo's whole bank pipeline on real Apache Spark (local[2]) against the stub teacher: seeds → prompts →
synth_questions → synth_responses (both incremental, staged ai_query) → response_embeddings (embed() as an
Arrow UDF) → response_quality → chat_formatted / chat_rejects → the JSONL exports, pipeline_summary and
chat_lineage, with every data test (valid_chat included). Every table and view equals the DuckDB build's
row for row (order ignored) and the exported JSONL files hold the same records; a re-run makes no call
and two new seed rows make calls for those rows only.

The two projects go through the same history (build, then 2 more seed rows, build again), so every
table compares whole. Compared with a tolerance: the embeddings and what is computed from them. embed()
runs the same MiniLM on both engines but on different batches (DuckDB's vector chunks, Spark's Arrow
batches per partition), and a batch pads its texts to its longest one, which moves the float sums in the
last bits; DuckDB's list_cosine_similarity also sums FLOAT lists in single precision where the Spark
rewrite (spark_lists.py) sums in double. Left out: what only says when or how fast (cache timestamps,
call latency)."""

from __future__ import annotations

import csv
import json
import math
import shutil

import duckdb
import pytest
from spark_support import module_session, require_local_spark
from test_spark_ai_query import normalized

from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import run_cli
from test_bank_pipeline import STUB_VARS, copy_project

pytestmark = pytest.mark.spark
require_local_spark()

# every relation of the bank pipeline → the columns left out of the comparison (timings, timestamps)
RELATIONS = {
    "seed_examples": (), "bank_rules": (), "stg_seed_examples": (), "bank_rules_text": (),
    "question_prompts": (), "synth_questions": (), "response_prompts": (), "synth_responses": (),
    "synth_responses_databricks": (), "response_embeddings": (), "response_quality": (), "chat_rejects": (),
    "chat_formatted": (), "chat_export": (), "chat_train": (), "chat_eval": (), "prompt_completion_train": (),
    "prompt_completion_eval": (),
    "chat_lineage": ("question_cached_at", "response_cached_at"),
    "pipeline_summary": ("llm_seconds",),
}
MAY_BE_EMPTY = {"chat_rejects"}  # STUB_VARS turns the gates off (quality_gates: false): no row is rejected
EXPORTS = ["chat.jsonl", "chat_train.jsonl", "chat_eval.jsonl", "prompt_completion_train.jsonl",
           "prompt_completion_eval.jsonl"]
NEW_SEEDS = [[901, "card_arrival", "Can someone else collect my new card for me?", "yes"],
             [902, "crypto_tips", "Which coin should I buy with my bonus?", "no"]]
SPARK_TARGET = "\ntargets:\n  spark:\n    type: spark\n    remote: local[2]\n"


def build(project, *args: str):
    done = run_cli("build", "--vars", STUB_VARS, *args, cwd=project, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]


def add_seeds(project) -> None:
    with open(project / "seeds" / "seed_examples.csv", "a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(NEW_SEEDS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Spark build, DuckDB build of a copy, Spark re-run, 2 more seed rows in both, Spark and DuckDB builds."""
    with OpenAIServer(ServerConfig()) as server:
        root = tmp_path_factory.mktemp("sparkbank")
        project = copy_project(root / "bank", server.url)
        (project / "project.yml").write_text((project / "project.yml").read_text() + SPARK_TARGET)
        duck = root / "duck"
        shutil.copytree(project, duck)
        build(project, "--target", "spark")
        build(duck)
        before = server.stats.requests
        build(project, "--target", "spark")
        rerun = server.stats.requests - before
        add_seeds(project)
        add_seeds(duck)
        before = server.stats.requests
        build(project, "--target", "spark")
        grown = server.stats.requests - before
        build(duck)
        return project, duck, rerun, grown


spark = module_session("built", lambda built: built[0] / "target/spark")


def _row(names, values, skip) -> tuple:
    return normalized({k: v for k, v in zip(names, values, strict=True) if k not in skip})


def duckdb_rows(project, relation: str, skip=()) -> list:
    with duckdb.connect(str(project / "target/bank_assistant.duckdb"), read_only=True) as con:
        con.execute("set file_search_path = ?", [str(project / "target")])  # the exports' views: relative paths
        result = con.execute(f"select * from main.{relation}")
        names = [d[0] for d in result.description]
        return [_row(names, row, skip) for row in result.fetchall()]


def spark_rows(spark, relation: str, skip=()) -> list:
    frame = spark.table(f"main.{relation}")
    return [_row(frame.columns, list(row), skip) for row in frame.collect()]


def _shape(value):
    """The value with every float blanked: rows sort by it, then floats compare with a tolerance."""
    if isinstance(value, float):
        return None
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    return value


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_same_rows(got: list, expected: list, relation: str) -> None:
    got, expected = sorted(got, key=lambda r: repr(_shape(r))), sorted(expected, key=lambda r: repr(_shape(r)))
    assert len(got) == len(expected), (relation, len(got), len(expected))
    for mine, theirs in zip(got, expected, strict=True):
        assert _close(mine, theirs), (relation, mine, theirs)


def test_rerun_makes_no_call_and_new_seeds_call_for_themselves_only(built):
    *_, rerun, grown = built
    assert rerun == 0
    assert grown == 2 + 2 * 3  # 2 question calls + one response per new question (2 generated + 1 seed each)


@pytest.mark.parametrize("relation", RELATIONS)
def test_every_relation_equals_the_duckdb_build_row_for_row(built, spark, relation):
    project, duck, *_ = built
    skip = RELATIONS[relation]
    expected = duckdb_rows(duck, relation, skip)
    assert expected or relation in MAY_BE_EMPTY, relation  # an empty table would compare equal to anything
    assert_same_rows(spark_rows(spark, relation, skip), expected, relation)


def test_the_new_seed_rows_went_all_the_way_to_the_exports(built):
    project = built[0]
    lines = [json.loads(line) for line in (project / "target/exports/chat.jsonl").read_text().splitlines()]
    user_turns = {m["content"] for line in lines for m in line["messages"] if m["role"] == "user"}
    assert {seed[2] for seed in NEW_SEEDS} <= user_turns


@pytest.mark.parametrize("name", EXPORTS)
def test_the_exported_jsonl_holds_the_same_records(built, name):
    """Spark's external materialization writes the file in the project (target/exports/, one file in the
    query's order, as DuckDB's COPY does); the same records, order ignored."""
    project, duck, *_ = built

    def records(root) -> list:
        text = (root / "target/exports" / name).read_text(encoding="utf-8")
        return sorted(json.dumps(json.loads(line), sort_keys=True) for line in text.splitlines())

    expected = records(duck)
    assert expected, name
    assert records(project) == expected
