"""`sqlsynth init` scaffolds what the tool is for (issue 16 item 9): seeds of questions, an endpoint
block, an ai_query model with a responseFormat, a chat-format model, a JSONL export, data and unit tests."""

import json

import pytest

from conftest import run_cli


@pytest.fixture
def scaffold(tmp_path):
    assert run_cli("init", "demo", cwd=tmp_path).returncode == 0
    return tmp_path / "demo"


def test_init_next_step_can_be_pasted_into_a_shell(tmp_path):
    result = run_cli("init", "my shop [2]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Next: cd 'my shop [2]' && sqlsynth build" in " ".join((result.stdout + result.stderr).split())
    assert "name: my_shop__2_\n" in (tmp_path / "my shop [2]/project.yml").read_text()


def test_init_scaffolds_the_llm_part(scaffold):
    project_yml = (scaffold / "project.yml").read_text()
    assert "provider: transformers" in project_yml and "smollm2-135m-instruct" in project_yml
    assert "#   provider: openai" in project_yml and "api_key_env: OPENAI_API_KEY" in project_yml
    assert "responseFormat := 'STRUCT<answer: STRING>'" in (scaffold / "models/assistant/answers.sql").read_text()
    listed = run_cli("ls", "-s", "tag:llm", cwd=scaffold)
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    assert {"model:answers", "model:chat_conversations", "model:chat_export",
            "unit_test:answers_keep_the_question_and_the_structured_answer"} <= names
    assert sum(1 for n in names if n.startswith("test:")) >= 4


def test_init_unit_test_answers_ai_query_without_the_model(scaffold):
    result = run_cli("test", "-s", "answers", "--exclude", "resource_type:test", cwd=scaffold,
                     env={"HF_HUB_OFFLINE": "1", "SQLSYNTH_CACHE_DIR": str(scaffold / "no-models")})
    assert result.returncode == 0, result.stderr
    results = json.loads((scaffold / "target/run_results.json").read_text())["results"]
    assert [r["status"] for r in results] == ["pass"]
    assert not (scaffold / "no-models").exists()  # the bundled model was never converted or loaded


@pytest.mark.model
def test_init_then_build_writes_a_chat_jsonl_offline(scaffold):
    result = run_cli("build", cwd=scaffold, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, timeout=900)
    assert result.returncode == 0, result.stderr
    lines = (scaffold / "target/exports/chat.jsonl").read_text().splitlines()
    assert len(lines) == 5
    for line in lines:
        roles = [m["role"] for m in json.loads(line)["messages"]]
        assert roles == ["system", "user", "assistant"]
