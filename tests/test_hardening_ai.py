"""Issue 13 item 10: ai_query rows that fail with failOnError => false are counted, never hidden.

A model whose every value failed is a WARN; --fail-on-ai-errors (or config fail_on_ai_errors) makes any
failed value an ERROR that keeps the previous table. Real CLI against the local stub server.
"""

import json

import duckdb
import pytest

from conftest import run_cli, write_file
from llm_support import stub

GEN = ("{{ config(materialized='table') }}\n"
       "select i, ai_query('teacher', 'q ' || i, failOnError => false) as r from range(20) t(i)")


def _project(root, url, extra=""):
    write_file(root, "project.yml", f"name: small\nendpoints:\n  teacher:\n    provider: openai\n"
                                    f"    base_url: {url}\n    model: stub\n    max_retries: 0\n{extra}")
    write_file(root, "models/gen.sql", GEN)


def _status(root):
    results = json.loads((root / "target/run_results.json").read_text())["results"]
    return {r["unique_id"]: r for r in results}["model.small.gen"]


def test_every_row_failed_is_a_warn_with_the_count(tmp_path):
    with stub(always_status=500) as server:
        _project(tmp_path, server.url)
        result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WARN" in result.stderr and "20 rows, 20 errors" in result.stderr
    assert "WARN=1" in result.stderr and "20 errors" in result.stderr.split("LLM:")[1]
    assert _status(tmp_path)["status"] == "warn"


def test_some_rows_failed_is_ok_with_the_count(tmp_path):
    with stub(rate_500=0.5) as server:
        _project(tmp_path, server.url)
        result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(text for text in result.stderr.splitlines() if " OK " in text and "gen" in text)
    errors = int(line.split("20 rows, ")[1].split(" errors")[0])
    assert 0 < errors < 20 and _status(tmp_path)["status"] == "success"


@pytest.mark.parametrize("how", ["flag", "config"])
def test_fail_on_ai_errors_keeps_the_previous_table(tmp_path, how):
    with stub() as server:
        _project(tmp_path, server.url)
        assert run_cli("run", cwd=tmp_path).returncode == 0
    with stub(always_status=500) as server:
        _project(tmp_path, server.url, "models:\n  +fail_on_ai_errors: true\n" if how == "config" else "")
        result = run_cli("run", *(["--fail-on-ai-errors"] if how == "flag" else []), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "ai_query failed for 20 of 20 values" in result.stderr and "Traceback" not in result.stderr
    assert _status(tmp_path)["status"] == "error"
    con = duckdb.connect(str(tmp_path / "target/small.duckdb"), read_only=True)
    try:  # the answers of the first run are still there
        assert con.execute("select count(*) from gen where r is not null").fetchall() == [(20,)]
    finally:
        con.close()
