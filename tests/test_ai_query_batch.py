"""Provider batch mode (`batch: true`) through the real `sqlsynth` entry point and the test server's
batch API (files upload, batch create/retrieve, output and error files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_ai_query_cli import cli

from helpers import query
from llm_support import stub

ROWS = 30
SQL = ("select i, ai_query('teacher', 'q ' || i{extra}) as r from range({rows}) t(i)")


def make(tmp_path: Path, url: str, extra: str = "", poll: float = 0.05) -> Path:
    (tmp_path / "models").mkdir(parents=True, exist_ok=True)
    (tmp_path / "project.yml").write_text(
        "name: p\nendpoints:\n  teacher:\n    provider: openai\n"
        f"    base_url: {url}\n    model: stub\n    max_retries: 1\n    retry_base_s: 0.01\n"
        f"    batch: true\n    batch_poll_s: {poll}\n"
        "    price_per_1k_input_tokens: 0.5\n    price_per_1k_output_tokens: 1.5\n")
    (tmp_path / "models" / "a.sql").write_text(
        "{{ config(materialized='table') }}\n" + SQL.format(rows=ROWS, extra=extra))
    return tmp_path


def q(project: Path, sql: str) -> list[tuple]:
    return query(project, sql, "target/p.duckdb")


def test_a_batch_answers_the_misses_once_and_the_cache_answers_the_rerun(tmp_path):
    with stub() as server:
        project = make(tmp_path, server.url)
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.batches == 1 and server.stats.batch_lines == ROWS
        assert server.stats.requests == 0  # no live chat request: everything went through the batch
        assert "batch batch_0001 submitted (30 requests)" in done.stdout + done.stderr
        assert q(project, "select count(*) from a where r = 'reply: q ' || i") == [(ROWS,)]
        log = q(project, "select batch_id, status, count(*) from sqlsynth.calls group by all")
        assert log == [("batch_0001", "ok", ROWS)]
        assert q(project, "select count(*) from sqlsynth.pending_batches") == [(0,)]
        again = cli(project, "run")
        assert again.returncode == 0 and server.stats.batches == 1  # re-run: all from the cache


def test_plan_shows_the_batch_price(tmp_path):
    with stub() as server:
        project = make(tmp_path, server.url)
        live = make(tmp_path / "live", server.url)
        (live / "project.yml").write_text((live / "project.yml").read_text().replace("    batch: true\n", ""))
        batch_plan, live_plan = cli(project, "plan", "--json"), cli(live, "plan", "--json")
        table = cli(project, "plan")
    assert "(batch" in table.stdout, table.stdout + table.stderr  # the table names the batch price
    assert batch_plan.returncode == 0 and live_plan.returncode == 0, batch_plan.stderr + live_plan.stderr
    import json

    [batch_row] = [r for r in json.loads(batch_plan.stdout) if r["model"] == "a"]
    [live_row] = [r for r in json.loads(live_plan.stdout) if r["model"] == "a"]
    assert batch_row["batch"] and not live_row["batch"] and batch_row["to_call"] == ROWS
    assert batch_row["cost"] == live_row["cost"] / 2 and live_row["cost"] > 0


def test_a_run_killed_while_the_batch_runs_resumes_it_without_resubmitting(tmp_path):
    with stub(batch_latency_s=3600) as server:
        project = make(tmp_path, server.url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NO_COLOR": "1"}
        child = subprocess.Popen([sys.executable, "-m", "sqlsynth", "--project-dir", str(project), "run"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while server.stats.batch_polls < 2 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polling starts only once the batch id is committed
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert server.stats.batches == 1 and server.stats.batch_polls >= 2
        server.config.batch_latency_s = 0  # the provider finishes the batch while nobody watches

        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "resuming batch batch_0001" in done.stdout + done.stderr
    assert server.stats.batches == 1 and server.stats.batch_lines == ROWS and server.stats.requests == 0
    assert q(project, "select count(*) from a where r = 'reply: q ' || i") == [(ROWS,)]


def test_failed_lines_fail_the_model_or_become_row_errors(tmp_path):
    with stub(batch_error_every=10) as server:
        strict = make(tmp_path / "strict", server.url)
        done = cli(strict, "run")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "injected batch line failure" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        # the 27 good lines are cached; the re-run submits only the 3 failed ones
        assert q(strict, "select count(*) from sqlsynth.cache") == [(ROWS - 3,)]
        server.config.batch_error_every = 0
        again = cli(strict, "run")
        assert again.returncode == 0, again.stdout + again.stderr
        assert server.stats.batch_lines == ROWS + 3

        server.config.batch_error_every = 10
        lenient = make(tmp_path / "lenient", server.url, ", failOnError := false, modelParameters := {'seed': 1}")
        done = cli(lenient, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        rows = q(lenient, "select count(*) filter (r.errorMessage is null), "
                          "count(*) filter (r.errorMessage like '%injected batch line failure%') from a")
        assert rows == [(ROWS - 3, 3)]
        failed = q(lenient, "select count(*) from sqlsynth.calls where status = 'error' and batch_id is not null")
        assert failed == [(3,)]


def _usage(project: Path) -> dict:
    import json

    return json.loads((project / "target" / "run_results.json").read_text())["usage"]["models"]["a"]


def test_a_5000_row_model_is_one_batch_and_its_failed_lines_are_not_sent_again_in_the_run(tmp_path):
    rows = 5000  # DuckDB hands ai_query 2,048 rows at a time: the batch is the model's, not the chunk's
    with stub(batch_error_every=1000) as server:
        project = make(tmp_path, server.url, ", failOnError := false")
        (project / "models" / "a.sql").write_text("{{ config(materialized='table') }}\n" + SQL.format(
            rows=rows, extra=", failOnError := false"))
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (server.stats.batches, server.stats.batch_lines, server.stats.requests) == (1, rows, 0)
        assert q(project, "select count(*) filter (r.errorMessage is null and r.result = 'reply: q ' || i), "
                          "count(*) filter (r.errorMessage like '%injected batch line failure%') from a") \
            == [(rows - 5, 5)]
        usage = _usage(project)
        assert (usage["rows"], usage["calls"], usage["cached"], usage["errors"]) == (rows, rows, 0, 5)

        server.config.batch_error_every = 0
        again = cli(project, "run")  # the next run sends only the 5 failed requests, as one more batch
        assert again.returncode == 0, again.stdout + again.stderr
        assert (server.stats.batches, server.stats.batch_lines) == (2, rows + 5)
        assert q(project, "select count(*) from a where r.result = 'reply: q ' || i") == [(rows,)]
        assert (_usage(project)["cached"], _usage(project)["calls"]) == (rows - 5, 5)


def test_an_ai_query_over_another_ones_answers_is_one_batch_per_level(tmp_path):
    with stub() as server:
        project = make(tmp_path, server.url)
        (project / "models" / "a.sql").write_text(
            "{{ config(materialized='table') }}\n"
            "with first as (select i, ai_query('teacher', 'q ' || i) as a from range(3000) t(i))\n"
            "select i, ai_query('teacher', 'again ' || a) as b from first")
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (server.stats.batches, server.stats.batch_lines, server.stats.requests) == (2, 6000, 0)
        assert q(project, "select count(*) from a where b = 'reply: again reply: q ' || i") == [(3000,)]


def test_a_call_in_a_subquery_falls_back_to_a_batch_per_chunk_and_says_so(tmp_path):
    with stub() as server:
        project = make(tmp_path, server.url)
        (project / "models" / "a.sql").write_text(
            "{{ config(materialized='table') }}\n"
            "select * from (select i, ai_query('teacher', 'q ' || i) as r from range(30) t(i)) s")
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "not one per model: ai_query inside a subquery" in " ".join((done.stdout + done.stderr).split())
        assert server.stats.batches == 1 and server.stats.batch_lines == 30  # 30 rows: one chunk
        assert q(project, "select count(*) from a where r = 'reply: q ' || i") == [(30,)]


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("fail", [True, False])
def test_a_wrong_key_shows_the_401_and_the_variable_to_fix(tmp_path, monkeypatch, batch, fail):
    monkeypatch.setenv("TEACHER_KEY", "sk-wrong-key-value")
    with stub(api_key="sk-right") as server:
        project = make(tmp_path, server.url, "" if fail else ", failOnError := false")
        text = (project / "project.yml").read_text().replace("    batch: true\n", "    batch: true\n" if batch else "    max_concurrency: 4\n")
        (project / "project.yml").write_text(text + "    api_key_env: TEACHER_KEY\n")
        done = cli(project, "run")
    output = done.stdout + done.stderr
    assert "sk-wrong-key-value" not in output and "Traceback" not in output
    if fail or batch:  # the model fails (batch mode: the upload itself is refused), naming file, cause and fix
        assert done.returncode == 1, output
        [line] = [line for line in output.splitlines() if line.startswith("ERROR a:")]
        assert "models/a.sql" in line and "HTTP 401" in line and "TEACHER_KEY" in line, line
        assert "not sent" not in line
    else:  # every row carries the cause; the rows never sent say so, with the cause
        assert done.returncode == 0, output
        errors = q(project, "select r.errorMessage from a")
        assert len(errors) == ROWS and all("HTTP 401" in e and "TEACHER_KEY" in e for (e,) in errors)
        assert 1 <= sum(not e.startswith("not sent") for (e,) in errors) <= 4  # those in flight when it came


def test_the_error_summary_names_the_cause_not_a_row_stopped_by_it():
    from sqlsynth.llm.batch import root_error

    stopped = "not sent: endpoint 't' was stopped by an earlier error (HTTP 401 ...)"
    assert root_error([stopped, "HTTP 401 from x: bad key", stopped]) == "HTTP 401 from x: bad key"
    assert root_error([stopped]) == stopped


def test_more_requests_than_a_batch_file_holds_go_in_several_batches(monkeypatch):
    from sqlsynth.llm import batch_api

    from llm_support import ai

    monkeypatch.setattr(batch_api, "MAX_LINES", 10)  # OpenAI's limit is 50,000 lines per file
    with stub() as server, ai(server, batch=True, batch_poll_s=0.01) as db:
        rows = db.sql("select count(*) filter (ai_query('t', 'q ' || i) = 'reply: q ' || i) from range(25) t(i)")
    assert rows == [(25,)]
    assert (server.stats.batches, server.stats.batch_lines, server.stats.requests) == (3, 25, 0)


def test_a_batch_endpoint_on_a_spark_target_is_refused_at_compile_time(tmp_path):
    project = make(tmp_path, "http://127.0.0.1:9/v1")
    (project / "project.yml").write_text((project / "project.yml").read_text() + (
        "targets:\n  dbx: {type: databricks, host: https://adb-1.azuredatabricks.net, token_env: DATABRICKS_TOKEN, "
        "serverless: true, catalog: main}\n"))
    done = cli(project, "compile", "--target", "dbx")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "models/a.sql" in done.stderr and "batch: true" in done.stderr and "--target duckdb" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_independent_calls_of_a_model_share_its_batch(tmp_path):
    with stub() as server:
        project = make(tmp_path, server.url)
        (project / "models" / "a.sql").write_text(
            "{{ config(materialized='table') }}\n"
            "select i, ai_query('teacher', 'a ' || i) as x, ai_query('teacher', 'b ' || (i % 100)) as y "
            "from range(3000) t(i)")
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (server.stats.batches, server.stats.batch_lines, server.stats.requests) == (1, 3100, 0)
        assert q(project, "select count(*) from a where x = 'reply: a ' || i and y = 'reply: b ' || (i % 100)") \
            == [(3000,)]
