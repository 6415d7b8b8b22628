"""Evaluation models (models/eval, issue 7) against the local OpenAI-compatible stub server:
metrics SQL recomputed from the per-answer rows, the decontamination check failing the build, and the
report showing the metrics table's numbers."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil

import duckdb
import pytest
import yaml

from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import SHARED, run_cli
from test_bank_pipeline import STUB_VARS, copy_project

# the pipeline's own stub settings, plus every eval endpoint on the stub
EVAL_VARS = STUB_VARS.strip("{}") + (", run_eval: true, eval_base_endpoint: stub, eval_student_endpoint: stub, "
                                     "eval_judge_endpoint: stub, eval_banking77_n: 5, eval_split_n: 6")


@pytest.fixture(scope="module")
def stub():
    with OpenAIServer(ServerConfig()) as server:
        yield server


def _vars(**extra) -> str:
    """EVAL_VARS with ``extra`` overriding its keys (a repeated key in --vars is an error)."""
    merged = yaml.safe_load("{" + EVAL_VARS + "}") | extra
    return json.dumps(merged)


def _rows(project, sql):
    con = duckdb.connect(str(project / "target/bank_assistant.duckdb"), read_only=True)
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def evaluated(stub, tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("eval") / "bank", stub.url)
    banking77 = SHARED / "data" / "banking77"
    result = run_cli("build", "--vars", _vars(banking77_dir=str(banking77)), cwd=project, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return project


def test_held_out_set_has_every_source_and_no_training_question(evaluated):
    questions = _rows(evaluated, "select * from eval_questions")
    sources = {q["source"] for q in questions}
    assert sources == {"eval_split", "banking77", "shipped_heldout", "generated_oos"}
    assert not any(q["in_scope"] for q in questions if q["source"] == "shipped_heldout")  # with banking77
    assert all(q["in_scope"] for q in questions if q["source"] == "banking77")
    assert not any(q["in_scope"] for q in questions if q["source"] == "generated_oos")
    train = {m["content"] for line in (evaluated / "target/exports/chat_train.jsonl").read_text().splitlines()
             for m in json.loads(line)["messages"] if m["role"] == "user"}
    assert not train & {q["question"] for q in questions}


def test_metrics_equal_a_recomputation_from_the_answers(evaluated):
    graded = _rows(evaluated, "select * from eval_judgements")
    metrics = {m["contestant"]: m for m in _rows(evaluated, "select * from eval_metrics")}
    assert set(metrics) == {"base_no_rules", "base_with_rules", "finetuned_no_rules", "teacher"}
    for name, m in metrics.items():
        rows = [g for g in graded if g["contestant"] == name]
        refused = [g["refused_by_phrase"] or bool(g["judge_refused"]) for g in rows]
        in_scope = [1 - r for g, r in zip(rows, refused, strict=True) if g["in_scope"]]
        out_scope = [float(r) for g, r in zip(rows, refused, strict=True) if not g["in_scope"]]
        assert m["n_answers"] == len(rows)
        assert math.isclose(m["in_scope_answer_rate"], sum(in_scope) / len(in_scope))
        assert math.isclose(m["out_of_scope_refusal_rate"], sum(out_scope) / len(out_scope))
        assert math.isclose(m["prompt_tokens_per_call"], sum(g["prompt_tokens"] for g in rows) / len(rows))
        assert all(g["latency_ms"] is not None and g["latency_ms"] > 0 for g in rows)
    baseline = metrics["base_with_rules"]
    student = metrics["finetuned_no_rules"]
    # the point of fine-tuning: the same questions without the rules prompt cost far fewer tokens
    assert student["prompt_tokens_per_call"] < baseline["prompt_tokens_per_call"] / 5
    assert math.isclose(student["prompt_tokens_vs_baseline"],
                        student["prompt_tokens_per_call"] / baseline["prompt_tokens_per_call"])


def test_report_shows_the_metrics_table(evaluated):
    result = run_cli("report", "--vars", _vars(), cwd=evaluated)
    assert result.returncode == 0, result.stderr
    page = (evaluated / "target/report/index.html").read_text()
    import html
    embedded = json.loads(html.unescape(re.search(r'id="metrics-data">(.*?)</script>', page, re.S).group(1)))
    rows = _rows(evaluated, "select * from eval_metrics")
    assert len(embedded["rows"]) == len(rows) == 4
    by_name = {r[0]: r for r in embedded["rows"]}
    for row in rows:
        assert by_name[row["contestant"]] == [None if v is None else v for v in row.values()]
    assert "Example answers" in page


def test_decontamination_fails_the_build(evaluated, stub, tmp_path):
    project = tmp_path / "bank"
    shutil.copytree(evaluated, project)
    train_question = next(m["content"] for line in (project / "target/exports/chat_train.jsonl").read_text().splitlines()
                          for m in json.loads(line)["messages"] if m["role"] == "user")
    leaked = tmp_path / "banking77"
    leaked.mkdir()
    with open(leaked / "test.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerow([train_question.upper() + "!", "leaked"])  # a normalised duplicate
        writer.writerow(["What is the weather like on Mars today?", "unrelated"])
    result = run_cli("build", "-s", "tag:eval", "--vars", _vars(banking77_dir=str(leaked)), cwd=project)
    assert result.returncode == 1
    assert "FAIL" in result.stderr and "eval_decontamination" in result.stderr
    data = json.loads((project / "target/run_results.json").read_text())
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in data["results"]}
    assert status["eval_decontamination"] == "fail"
    assert status["eval_answers"] == "skipped"


def test_a_near_duplicate_is_dropped_not_fatal(evaluated, tmp_path):
    project = tmp_path / "bank"
    shutil.copytree(evaluated, project)
    train_question = next(m["content"] for line in (project / "target/exports/chat_train.jsonl").read_text().splitlines()
                          for m in json.loads(line)["messages"] if m["role"] == "user" and len(m["content"].split()) >= 9)
    near = tmp_path / "banking77"
    near.mkdir()
    # one extra word: most trigrams shared with the training question; twelve unrelated questions
    rows = [[f"Hi {train_question}", "near"]] + [[f"Unrelated question number {i} about Mars?", "x"] for i in range(12)]
    with open(near / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "category"], *rows])
    result = run_cli("build", "-s", "tag:eval", "--vars", _vars(banking77_dir=str(near), eval_banking77_n=13),
                     cwd=project)
    assert result.returncode == 0, result.stderr[-2000:]
    # (the project's shipped held-out questions are checked too; only banking77's are looked at here)
    flagged = _rows(project, "select question from eval_decontamination where contaminated and source = 'banking77'")
    assert [r["question"] for r in flagged] == [rows[0][0]]
    answered = {r["question"] for r in _rows(project, "select distinct question from eval_answers")}
    assert rows[0][0] not in answered and rows[1][0] in answered


def test_each_kind_of_request_has_its_own_call(evaluated):
    """Contestants on one endpoint with different prompts (rules vs teacher) must not share a call;
    the same request on the same endpoint (plain vs plain, here all on the stub) is one call."""
    rows = _rows(evaluated, "select prompt_kind, question_id, answer_cache_key from eval_judgements")
    assert all(r["answer_cache_key"] for r in rows)
    by_question: dict[str, dict[str, set]] = {}
    for r in rows:
        by_question.setdefault(r["question_id"], {}).setdefault(r["prompt_kind"], set()).add(r["answer_cache_key"])
    for kinds in by_question.values():
        assert set(kinds) == {"plain", "rules", "teacher"}
        assert all(len(keys) == 1 for keys in kinds.values())
        assert len(set.union(*kinds.values())) == 3


def _wilson(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    p = hits / n
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def test_every_metric_has_n_and_a_95_percent_interval(evaluated):
    graded = _rows(evaluated, "select * from eval_judgements")
    metrics = {m["contestant"]: m for m in _rows(evaluated, "select * from eval_metrics")}
    intervals = _rows(evaluated, "select * from eval_metric_intervals")
    assert {i["metric"] for i in intervals} >= {"in_scope_answer_rate", "out_of_scope_refusal_rate",
                                                 "mean_judge_score", "prompt_tokens_per_call"}
    for name, m in metrics.items():
        rows = [g for g in graded if g["contestant"] == name]
        refused = [g["refused_by_phrase"] or bool(g["judge_refused"]) for g in rows if not g["in_scope"]]
        n = len(refused)
        assert m["out_of_scope_refusal_rate_n"] == n > 0
        low, high = _wilson(sum(refused), n)
        assert math.isclose(m["out_of_scope_refusal_rate_ci_low"], low, abs_tol=1e-9)
        assert math.isclose(m["out_of_scope_refusal_rate_ci_high"], high, abs_tol=1e-9)
        scores = [g["judge_score"] for g in rows if g["judge_score"] is not None]
        assert m["mean_judge_score_n"] == len(scores)
        if len(set(scores)) > 1:  # a bootstrap interval around the mean, inside the data's range
            assert min(scores) <= m["mean_judge_score_ci_low"] < m["mean_judge_score"] < m["mean_judge_score_ci_high"] <= max(scores)
        tokens = [g["prompt_tokens"] for g in rows]
        assert m["prompt_tokens_per_call_ci_low"] <= m["prompt_tokens_per_call"] <= m["prompt_tokens_per_call_ci_high"]
        assert m["prompt_tokens_per_call_n"] == len(tokens)
        small = sorted(k[:-2] for k, v in m.items() if k.endswith("_n") and k != "n_answers" and v < 30)
        assert small  # the test's held-out set is small: some metrics are indicative only
        assert sorted((m["indicative_only"] or "").split(", ")) == small


def test_an_eval_source_with_no_rows_is_a_warning_naming_its_var(evaluated, tmp_path):
    project = tmp_path / "bank"
    shutil.copytree(evaluated, project)
    banking77 = str(SHARED / "data" / "banking77")
    result = run_cli("build", "-s", "tag:eval", "--vars", _vars(eval_split_n=0, banking77_dir=banking77), cwd=project)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "WARN eval_questions_has_eval_split_rows" in output, output[-3000:]
    assert "0 rows: raise var eval_split_n" in output
    sources = {r["source"] for r in _rows(project, "select distinct source from eval_questions")}
    assert "eval_split" not in sources and "banking77" in sources
