"""Acceptance of the private-corpus path on examples/gardening (with tests/fixtures/corpus/gardening/project.yml):
Posts.xml → corpus_posts → corpus_qa → JSONL export → vector index → retrieve → grounded answers,
with the answers coming from the local OpenAI stub server (fast, deterministic). One marked test
runs the grounded model on the real bundled local model."""

import json
import shutil
from pathlib import Path

import pytest

from sqlsynth.api import Options, compile_nodes, show
from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig
from training.data import read_records

from helpers import build, statuses
from helpers import query as query_db

ROOT = Path(__file__).resolve().parents[1]


def query(root, sql):
    name = "corpus_fixture" if (root / "project.yml").read_text().count("name: corpus_fixture") else "gardening"
    return query_db(root, sql, database=f"target/{name}.duckdb")


EXAMPLE = ROOT / "examples" / "gardening"
FIXTURE = ROOT / "tests" / "fixtures" / "corpus" / "gardening"


@pytest.fixture
def gardening(tmp_path, monkeypatch):
    """The example project itself (models, macros, seeds, docs) with the fixture's project.yml, which
    points the answers at the stub server and sets a small context window."""
    root = tmp_path / "gardening"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "README.md", "__pycache__"))
    shutil.copy(FIXTURE / "project.yml", root / "project.yml")
    with OpenAIServer(ServerConfig()) as server:
        monkeypatch.setenv("CORPUS_STUB_URL", server.url)
        yield root, server


def test_ingest_export_index_retrieve_and_answer(gardening):
    root, server = gardening
    report = build(root)
    assert report.success, [(r.name, r.message) for r in report.results if r.status != "success"]

    # ingest: 20 posts, filtered by the vars (Score >= 5, body <= 1000 chars)
    assert query(root, "select count(*) from Posts") == [(20,)]
    kept = {r[0] for r in query(root, "select post_id from corpus_posts")}
    assert 4 not in kept and 9 not in kept and 14 not in kept and 1 in kept  # low score, low score, too long

    # Q&A export in the Dolly format the trainer reads; accepted answer preferred
    export = root / "target" / "exports" / "corpus_qa.jsonl"
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert all(set(r) == {"instruction", "context", "response", "category"} for r in records)
    assert {r["category"] for r in records} == {"open_qa"}  # dolly_context: question_body (the default)
    by_title = {r["instruction"]: r for r in records}
    assert len(records) == 6 and "How do I make compost tea?" not in by_title  # a question without answers
    tomatoes = by_title["How often should I water tomato plants in containers?"]
    assert tomatoes["response"].startswith("Containers dry out")  # accepted (score 9), not the score-15 one
    assert "fast & the lower leaves" in tomatoes["context"]  # entities decoded
    assert by_title["Why are my basil leaves turning yellow?"]["response"].startswith("Yellow lower leaves")
    code = by_title["Log soil moisture with a Raspberry Pi?"]["response"]
    assert "```\nimport csv, time\n" in code and "if value < 300 and value > 0:" in code
    assert "Café owner" in by_title["How deep should I plant garlic cloves?"]["context"]
    assert len(read_records(export)) == 6  # training.data accepts the file

    # vector index + retrieve: search by question + chunk, return the chunk
    hits = show(Options(project_dir=root), "select retrieve('gardening', 'aphids on my beans', 3)", 1)[1][0][0]
    assert hits[0]["id"] == "17-1" and hits[0]["text"].startswith("Several things work together")
    assert query(root, "select count(*) from handbook_index") == [(3,)]

    # grounded answers: context in the prompt, trimmed to the (small) context window and counted
    rows = query(root, "select question_id, chunks_retrieved, chunks_dropped, context_tokens, prompt, answer "
                       "from grounded_answers order by question_id")
    assert len(rows) == 5
    for _, retrieved, _dropped, tokens, prompt, answer in rows:
        assert retrieved == 3 and prompt.startswith("Knowing this context:\n")
        assert answer == f"reply: {prompt}"  # the stub echoes the prompt it received
        assert tokens <= 300 - 96 - 32
    assert sum(r[2] for r in rows) > 0, "the 300-token window must force some trimming"
    plain = query(root, "select answer from plain_answers order by question_id")
    assert plain[0][0] == "reply: Answer the question: How much water do tomatoes in pots need?"
    side = query(root, "select count(*), count(grounded_answer), count(plain_answer) from answers_side_by_side")
    assert side == [(5, 5, 5)]

    # a re-run pays for nothing: answers come from the cache, no chunk is embedded again
    requests = server.stats.requests
    again = build(root, "run")
    assert again.success and server.stats.requests == requests
    assert "0 embedded" in next(r.message for r in again.results if r.name == "corpus_index")


def test_more_context_with_a_larger_k_and_window(gardening):
    root, _ = gardening
    report = build(root, vars={"k": 5, "context_window": 4096})
    assert report.success
    rows = query(root, "select chunks_retrieved, chunks_dropped from grounded_answers")
    assert all(r == (5, 0) for r in rows)


def test_vars_change_the_filters(gardening):
    root, _ = gardening
    report = build(root, select=["+corpus_qa"], vars={"min_score": 9})
    assert report.success
    assert query(root, "select count(*) from corpus_qa") == [(2,)]  # questions 1 and 16 with answers >= 9


def test_grounded_answers_fail_clearly_without_an_index(gardening):
    root, _ = gardening
    report = build(root, select=["grounded_answers", "+held_out_questions"])
    result = statuses(report)
    assert result["grounded_answers"] == "error"
    message = next(r.message for r in report.results if r.name == "grounded_answers")
    assert "collection 'gardening' does not exist" in message and "sqlsynth run -s" in message


def test_the_example_project_compiles():
    nodes = compile_nodes(Options(project_dir=ROOT / "examples" / "gardening"))
    names = {node.name for node, _, _ in nodes}
    assert {"corpus_posts", "corpus_qa", "corpus_qa_export", "corpus_index", "grounded_answers",
            "plain_answers", "answers_side_by_side", "handbook_index"} <= names
    shutil.rmtree(ROOT / "examples" / "gardening" / "target" / "compiled", ignore_errors=True)


@pytest.mark.model
def test_grounded_answers_with_the_bundled_local_model(tmp_path):
    root = tmp_path / "gardening"
    shutil.copytree(ROOT / "examples" / "gardening", root, ignore=shutil.ignore_patterns("target"))
    report = build(root, select=["+grounded_answers"], vars={"max_new_tokens": 12})
    assert report.success, [(r.name, r.message) for r in report.results if r.status != "success"]
    rows = query(root, "select chunks_retrieved, chunks_dropped, answer from grounded_answers")
    assert len(rows) == 5 and all(r[0] == 3 and r[1] == 0 and r[2].strip() for r in rows)
