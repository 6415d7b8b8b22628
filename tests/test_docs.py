"""`sqlsynth docs generate|serve`: the site's data for a plain `init` project, an LLM project with a
chat export (calls, tokens, cost, truncated answers, duplicates), the evaluation report, the layout."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from sqlsynth.docs.layout import NODE_H, NODE_W, layout
from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import run_cli

LLM_PROJECT = {
    "seeds/questions.csv": "id,question\n1,how do I open a savings account today\n2,hi there\n3,hi there\n",
    "models/answers.sql": """
        {{ config(materialized='table') }}
        select id, question,
               ai_query('t', question, modelParameters := {'max_tokens': 4}) as answer
        from {{ ref('questions') }}
    """,
    "models/chat.sql": """
        {{ config(materialized='external', format='jsonl') }}
        select [{'role': 'user', 'content': question}, {'role': 'assistant', 'content': answer}] as messages
        from {{ ref('answers') }} order by id
    """,
    "models/schema.yml": """
        models:
          - name: answers
            description: one answer per question
            columns:
              - name: id
                description: the question's id
                data_tests: [not_null, unique]
    """,
}


def site_data(root) -> dict:
    page = (root / "target/docs/index.html").read_text(encoding="utf-8")
    # self-contained: no script, style, image or frame is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link" not in page
    found = re.search(r'<script type="application/json" id="docs-data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def generate(root, *args) -> dict:
    result = run_cli("docs", "generate", *args, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Wrote" in result.stdout + result.stderr
    return site_data(root)


def test_plain_init_project_before_and_after_a_build(tmp_path):
    assert run_cli("init", "shop", cwd=tmp_path).returncode == 0
    root = tmp_path / "shop"
    before = generate(root)
    assert any("does not exist yet" in note for note in before["notes"])
    assert {"seed", "model", "test", "export"} <= {n["type"] for n in before["graph"]["nodes"]}
    assert all(n.get("run") is None for n in before["nodes"].values())

    assert run_cli("build", "--exclude", "tag:llm", cwd=root).returncode == 0  # the local model: too slow here
    data = generate(root)
    assert data["notes"] == [] and data["last_run"]["command"] == "build"
    orders = data["nodes"]["model.shop.customer_orders"]
    assert orders["run"]["status"] == "success" and orders["rows"] == orders["run"]["rows_affected"] > 0
    assert "customer_id" in [c["name"] for c in orders["columns"]] and all(c["type"] for c in orders["columns"])
    assert "ref('stg_orders')" in orders["sql"].replace('"', "'")
    assert [t["status"] for t in orders["tests"]] == ["pass"]
    assert data["nodes"]["seed.shop.raw_orders"]["rows"] > 0
    plain_ids = {n["id"] for n in data["graph"]["nodes"] if n["plain"]}
    assert "model.shop.customer_orders" in plain_ids and not any(i.startswith("test.") for i in plain_ids)
    assert ["model.shop.stg_orders", "model.shop.customer_orders"] in data["graph"]["edges"]
    assert data["evaluation"] is None
    chat = data["nodes"]["export.chat_export"]  # its model (tag llm) was not built: said, not crashed
    assert chat["dataset"]["kind"] == "missing" and "build the model" in chat["dataset"]["error"]
    assert data["nodes"]["model.shop.answers"]["built"] is False


@pytest.fixture(scope="module")
def llm_site(tmp_path_factory):
    """The LLM project built against the stub (answers cut at max_tokens words: finish_reason 'length')."""
    root = tmp_path_factory.mktemp("docs") / "llm"
    with OpenAIServer(ServerConfig(cut_at_max_tokens=True)) as server:
        files = {"project.yml": f"""name: llm
endpoints:
  t:
    provider: openai
    base_url: {server.url}
    model: stub
    timeout_s: 10
    max_retries: 1
    retry_base_s: 0.01
    price_per_1k_input_tokens: 1.0
    price_per_1k_output_tokens: 2.0
""", **{k: textwrap.dedent(v).lstrip("\n") for k, v in LLM_PROJECT.items()}}
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        result = run_cli("build", cwd=root)
        assert result.returncode == 0, result.stdout + result.stderr
    return root, generate(root)


def test_llm_node_shows_calls_tokens_cost_and_truncation(llm_site):
    _root, data = llm_site
    answers = data["nodes"]["model.llm.answers"]
    calls = answers["llm_calls"]
    assert calls["calls"] == 2  # the duplicate question shared one request
    assert calls["truncated"] == 1 and calls["errors"] == 0
    assert calls["prompt_tokens"] > 0 and calls["completion_tokens"] > 0
    expected = (calls["prompt_tokens"] * 1.0 + calls["completion_tokens"] * 2.0) / 1000
    assert calls["cost"] == pytest.approx(expected)
    assert answers["llm_last_run"]["rows"] == 3 and answers["llm_last_run"]["calls"] == 2
    assert answers["description"] == "one answer per question"
    assert {c["name"]: c["description"] for c in answers["columns"]}["id"] == "the question's id"
    assert sorted(t["name"] for t in answers["tests"]) == ["not_null_answers_id", "unique_answers_id"]


def test_export_dataset_statistics(llm_site):
    root, data = llm_site
    export = data["nodes"]["export.chat"]
    assert export["path"] == "target/exports/chat.jsonl" and export["model"] == "model.llm.chat"
    assert ["model.llm.chat", "export.chat"] in data["graph"]["edges"]
    assert next(n for n in data["graph"]["nodes"] if n["id"] == "export.chat")["status"] == "success"
    stats = export["dataset"]
    lines = [json.loads(line) for line in (root / export["path"]).read_text().splitlines()]
    assert stats["kind"] == "chat" and stats["conversations"] == len(lines) == 3
    assert stats["turns"]["mean"] == 2
    assert stats["duplicate_questions"] == 1 and stats["duplicate_conversations"] == 1
    assert stats["truncated_answers"] == 1 and stats["empty_answers"] == 0
    answers = [m["content"] for line in lines for m in line["messages"] if m["role"] == "assistant"]
    assert stats["roles"]["assistant"]["chars"]["max"] == max(len(a) for a in answers)
    assert stats["tokens_per_conversation"]["total"] > 0


def test_other_exports_get_table_statistics(make_project):
    root = make_project({"models/rows.sql": "{{ config(materialized='ephemeral') }}\n"
                                            "select * from (values ('a', 1), ('a', 1), ('bcd', 2)) t(s, n)",
                         "models/out.sql": "{{ config(materialized='external', format='parquet') }}\n"
                                           "select * from {{ ref('rows') }}"})
    assert run_cli("build", cwd=root).returncode == 0
    data = generate(root)
    ephemeral = data["nodes"]["model.proj.rows"]
    assert ephemeral["materialized"] == "ephemeral" and ephemeral["relation"] is None and ephemeral["built"] is None
    stats = data["nodes"]["export.out"]["dataset"]
    assert stats["kind"] == "table" and stats["rows"] == 3 and stats["duplicate_rows"] == 1
    assert stats["text_lengths"]["s"]["max"] == 3


def test_evaluation_report_is_part_of_the_site(fixture_project):
    root = fixture_project("report")
    assert run_cli("seed", cwd=root).returncode == 0
    data = generate(root)
    assert data["evaluation"] == "evaluation/index.html"
    report = (root / "target/docs/evaluation/index.html").read_text()
    assert "eval_metrics" in report or "contestant" in report


def test_serve_answers_on_localhost(tmp_path):
    assert run_cli("init", "web", cwd=tmp_path).returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "sqlsynth", "docs", "serve", "--port", "0"],
                               cwd=tmp_path / "web", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"})
    try:
        line = process.stderr.readline()  # "Serving ... at http://127.0.0.1:PORT/" (the console is stderr)
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and 'id="docs-data"' in response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_without_a_site_is_one_message(tmp_path):
    assert run_cli("init", "nosite", cwd=tmp_path).returncode == 0
    result = run_cli("docs", "serve", "--no-generate", cwd=tmp_path / "nosite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "sqlsynth docs generate" in result.stderr


def test_layout_points_every_edge_down_without_overlaps():
    ids = ["a", "b", "c", "d", "e"]
    edges = [("a", "c"), ("b", "c"), ("c", "d"), ("a", "e"), ("d", "e")]
    positions, width, height = layout(ids, edges)
    for parent, child in edges:
        assert positions[child][1] > positions[parent][1]
    boxes = sorted(positions.values())
    for (x1, y1), (x2, y2) in itertools.pairwise(boxes):
        assert y1 != y2 or x2 - x1 >= NODE_W
    assert all(0 <= x <= width - NODE_W and 0 <= y <= height - NODE_H for x, y in boxes)


def test_page_text_is_escaped(make_project):
    root = make_project({"models/m.sql": "-- </script><script>alert(1)</script>\nselect 1 as x"})
    data = generate(root)
    assert "</script><script>alert(1)" in data["nodes"]["model.proj.m"]["sql"]
    page = (root / "target/docs/index.html").read_text()
    assert page.count("</script>") == 2  # the data block and the code: the model's text ends neither


def test_a_build_holding_the_database_leaves_its_facts_out(fixture_project):
    import duckdb

    root = fixture_project("report")
    assert run_cli("seed", cwd=root).returncode == 0
    holder = duckdb.connect(str(root / "target/report_fixture.duckdb"))  # as a running build does
    try:
        data = generate(root)
    finally:
        holder.close()
    assert any("database not read" in note and "locked" in note for note in data["notes"])
    assert data["evaluation"] is None and data["nodes"]["seed.report_fixture.eval_metrics"]["columns"] == []


def test_bank_project_site(tmp_path):
    """The repository's bank pipeline, built against the stub teacher: every step in the graph, the
    ai_query models' calls, and the chat exports' statistics equal to the files."""
    from test_bank_pipeline import STUB_VARS, copy_project

    with OpenAIServer(ServerConfig()) as server:
        root = copy_project(tmp_path / "bank", server.url)
        result = run_cli("build", "--vars", STUB_VARS, cwd=root, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    data = generate(root, "--vars", STUB_VARS)
    plain = {n["name"] for n in data["graph"]["nodes"] if n["plain"]}
    assert {"seed_examples", "question_prompts", "synth_questions", "synth_responses", "chat_formatted",
            "chat_export", "chat.jsonl", "chat_train.jsonl", "chat_eval.jsonl"} <= plain
    questions = data["nodes"]["model.bank_assistant.synth_questions"]
    assert questions["llm_calls"]["calls"] > 0 and questions["llm_calls"]["endpoints"][0]["endpoint"] == "stub"
    assert questions["run"]["status"] == "success" and questions["rows"] > 0
    for name in ("chat", "chat_train", "chat_eval"):
        export = next(n for n in data["nodes"].values() if n["type"] == "export" and n["name"] == f"{name}.jsonl")
        lines = (root / export["path"]).read_text().splitlines()
        assert export["dataset"]["kind"] == "chat" and export["dataset"]["conversations"] == len(lines) > 0
    train, evaluation = (data["nodes"][f"export.chat_{s}"]["dataset"]["conversations"] for s in ("train", "eval"))
    assert train + evaluation == data["nodes"]["export.chat_export"]["dataset"]["conversations"]
