"""`sqlsynth debug` and `plan`'s unset-key warning (issue 16 item 7), against the real local test server."""

import subprocess
import sys
import textwrap

from conftest import run_cli
from llm_support import stub

ENDPOINTS = """
endpoints:
  teacher:
    provider: openai
    base_url: {url}
    model: stub
    api_key_env: SQLSYNTH_TEST_TEACHER_KEY
  offline:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: x
"""


def _lines(result) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in result.stdout.splitlines() if ":" in line}


def test_debug_reports_each_endpoint_and_the_database(fixture_project):
    project = fixture_project("jaffle")
    with stub() as server:
        (project / "project.yml").write_text((project / "project.yml").read_text() + ENDPOINTS.format(url=server.url))
        unset = run_cli("debug", cwd=project, env={"SQLSYNTH_TEST_TEACHER_KEY": ""})
        assert run_cli("seed", cwd=project).returncode == 0
        ready = run_cli("debug", cwd=project, env={"SQLSYNTH_TEST_TEACHER_KEY": "k"})
    assert unset.returncode == 1 and "Traceback" not in unset.stderr
    lines = _lines(unset)
    assert "FAIL endpoint teacher" in lines and "SQLSYNTH_TEST_TEACHER_KEY is not set" in lines["FAIL endpoint teacher"]
    assert "is not reachable" in lines["FAIL endpoint offline"]
    assert "OK   project.yml" in lines and "jaffle_shop" in lines["OK   project.yml"]
    assert "does not exist yet" in lines["OK   database"]
    assert "OK   endpoint default" in lines and "smollm2" in lines["OK   endpoint default"]
    assert any(key.endswith("extra [local]") for key in lines)
    assert any(key.endswith("extra [serve]") for key in lines)
    ready_lines = _lines(ready)
    assert "1 model(s) listed" in ready_lines["OK   endpoint teacher"]
    assert "opens; no other process holds its lock" in ready_lines["OK   database"]
    assert "written as v1.4.0" in ready_lines["OK   storage version"]


def test_debug_names_the_process_holding_the_lock(fixture_project):
    project = fixture_project("jaffle")
    assert run_cli("seed", cwd=project).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, duckdb
        con = duckdb.connect(sys.argv[1])
        print("held", flush=True)
        sys.stdin.read()
    """), str(project / "target/jaffle_shop.duckdb")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("debug", cwd=project)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert result.returncode == 1
    assert f"locked by process {holder.pid}" in _lines(result)["FAIL database"]


def test_debug_reports_an_invalid_project_file(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text() + "\nthreds: 4\n")
    result = run_cli("debug", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "threds" in _lines(result)["FAIL project.yml"]


def test_plan_warns_when_an_endpoint_key_is_unset(fixture_project):
    project = fixture_project("jaffle")
    (project / "project.yml").write_text((project / "project.yml").read_text()
                                         + ENDPOINTS.format(url="http://127.0.0.1:9/v1"))
    (project / "models/marts/answers.sql").write_text(
        "{{ config(materialized='table') }}\nselect ai_query('teacher', first_name) as a from {{ ref('stg_customers') }}\n")
    assert run_cli("build", "-s", "+stg_customers", cwd=project).returncode == 0
    result = run_cli("plan", "-s", "answers", cwd=project, env={"SQLSYNTH_TEST_TEACHER_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert "environment variable SQLSYNTH_TEST_TEACHER_KEY is not set" in result.stderr
    quiet = run_cli("plan", "-s", "answers", cwd=project, env={"SQLSYNTH_TEST_TEACHER_KEY": "k"})
    assert "is not set" not in quiet.stderr
