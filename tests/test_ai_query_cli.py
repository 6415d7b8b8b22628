"""ai_query through the real `sqlsynth` entry point: run, show, plan, cache stats/clear, run_results usage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_support import stub

MODELS = {
    "questions.sql": """{{ config(materialized='table') }}
select i, ai_query('teacher', 'seed ' || i,
                   responseFormat := 'STRUCT<reasoning: STRING, questions: ARRAY<STRING>>',
                   modelParameters := {'temperature': 0.99, 'max_tokens': 200}) as r
from range(4) t(i)""",
    "flat.sql": """{{ config(materialized='table') }}
select i, unnest(r.questions) as question from {{ ref('questions') }}""",
    "responses.sql": """{{ config(materialized='table', dialect='databricks') }}
select question, from_json(ai_query('teacher', question, responseFormat => 'STRUCT<content: STRING>',
       modelParameters => named_struct('temperature', 0.7, 'max_tokens', 512)), 'STRUCT<content: STRING>').content
       as response
from {{ ref('flat') }}""",
}


def make_project(tmp_path: Path, url: str, extra: str = "") -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "project.yml").write_text(
        "name: p\nendpoints:\n  teacher:\n    provider: openai\n"
        f"    base_url: {url}\n    model: stub\n    max_retries: 1\n    retry_base_s: 0.01\n"
        "    price_per_1k_input_tokens: 0.5\n    price_per_1k_output_tokens: 1.5\n" + extra)
    for name, sql in MODELS.items():
        (tmp_path / "models" / name).write_text(sql)
    return tmp_path


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "sqlsynth", "--project-dir", str(project), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_run_plan_show_and_cache_commands(tmp_path):
    with stub() as server:
        project = make_project(tmp_path, server.url)
        plan = cli(project, "plan", "--json")
        assert plan.returncode == 0, plan.stderr
        rows = {r["model"]: r for r in json.loads(plan.stdout)}
        assert rows["questions"]["to_call"] == 4 and rows["questions"]["cached"] == 0
        assert server.stats.requests == 0  # plan calls nothing

        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.requests == 4 + 12
        usage = json.loads((project / "target" / "run_results.json").read_text())["usage"]
        assert usage["models"]["responses"]["calls"] == 12 and usage["total"]["cost"] > 0

        again = cli(project, "run")
        assert again.returncode == 0 and server.stats.requests == 16

        replan = json.loads(cli(project, "plan", "--json").stdout)
        assert all(r["to_call"] == 0 for r in replan)

        shown = cli(project, "show", "select ai_query('teacher', 'Say hi') as a")
        assert shown.returncode == 0 and "reply: Say hi" in shown.stdout

        stats = json.loads(cli(project, "cache", "stats", "--json").stdout)
        assert stats[0]["endpoint"] == "teacher" and stats[0]["cached"] == 17
        cleared = cli(project, "cache", "clear", "--endpoint", "teacher")
        assert cleared.returncode == 0 and "Deleted 17" in cleared.stderr


@pytest.mark.parametrize("sql, words", [
    ("select ai_query('teachr', 'x') as a", "unknown endpoint 'teachr'"),
    ("select ai_query('teacher', 'x', responseFormat := 'Nope') as a", "pydantic model 'Nope'"),
])
def test_user_errors_are_one_clear_message(tmp_path, sql, words):
    with stub() as server:
        project = make_project(tmp_path, server.url)
        shown = cli(project, "show", sql)
    assert shown.returncode != 0
    assert words in shown.stderr and "Traceback" not in shown.stderr


def test_server_faults_after_retries_fail_the_model_with_the_numbers(tmp_path):
    with stub(always_status=500) as server:
        project = make_project(tmp_path, server.url)
        done = cli(project, "run", "-s", "questions")
    assert done.returncode == 1
    assert "failed for 4 of 4 rows" in done.stdout + done.stderr


def test_pydantic_model_from_udfs_as_response_format(tmp_path):
    with stub() as server:
        project = make_project(tmp_path, server.url)
        (project / "udfs").mkdir()
        (project / "udfs" / "formats.py").write_text(
            "from pydantic import BaseModel, field_validator\n\n"
            "class Questions(BaseModel):\n"
            "    reasoning: str\n"
            "    questions: list[str]\n\n"
            "    @field_validator('questions')\n"
            "    @classmethod\n"
            "    def keep_two(cls, value):\n"
            "        return value[:2]\n")
        shown = cli(project, "show", "select ai_query('teacher', 'x', responseFormat := 'Questions') as r")
    assert shown.returncode == 0, shown.stderr
    assert "questions0" in shown.stdout and "questions2" not in shown.stdout
