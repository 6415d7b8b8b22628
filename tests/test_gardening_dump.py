"""The gardening example on a dump shaped like a real Stack Exchange one (issue 16 item 13): every post
type (1-8) and attribute a real Posts.xml has, and the var that decides what Dolly's `context` holds."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
DUMP = ROOT / "tests/fixtures/corpus/stackexchange_dump/Posts.xml"
REAL_POSTS_ATTRIBUTES = {
    "Id", "PostTypeId", "AcceptedAnswerId", "ParentId", "CreationDate", "Score", "ViewCount", "Body",
    "OwnerUserId", "OwnerDisplayName", "LastEditorUserId", "LastEditorDisplayName", "LastEditDate",
    "LastActivityDate", "Title", "Tags", "AnswerCount", "CommentCount", "FavoriteCount", "ClosedDate",
    "CommunityOwnedDate", "ContentLicense"}


@pytest.fixture
def gardening(tmp_path) -> Path:
    root = tmp_path / "gardening"
    shutil.copytree(ROOT / "examples/gardening", root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    shutil.copy(DUMP, root / "seeds/Posts.xml")
    return root


def _records(root: Path) -> dict[str, dict]:
    lines = (root / "target/exports/corpus_qa.jsonl").read_text().splitlines()
    return {json.loads(line)["instruction"].split("\n")[0]: json.loads(line) for line in lines}


def _query(root: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(root / "target/gardening.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_builds_on_a_dump_with_every_post_type_and_attribute(gardening):
    result = run_cli("build", "-s", "+corpus_qa_export", cwd=gardening)
    assert result.returncode == 0, result.stderr
    types = dict(_query(gardening, "select column_name, data_type from information_schema.columns "
                                   "where table_name = 'Posts'"))
    assert REAL_POSTS_ATTRIBUTES <= set(types)  # (the reader also declares DeletionDate, a SEDE column)
    assert types["FavoriteCount"] == "BIGINT" and types["CommunityOwnedDate"] == "TIMESTAMP"
    assert types["OwnerDisplayName"] == "VARCHAR" and types["LastEditorUserId"] == "BIGINT"
    assert _query(gardening, "select list(distinct PostTypeId order by PostTypeId) from Posts") == [(list(range(1, 9)),)]
    # tag wikis, a high-scored moderator nomination and the privilege wiki are not Q&A material
    assert _query(gardening, "select list(distinct post_type_id order by post_type_id) from corpus_posts") == [([1, 2],)]
    records = _records(gardening)
    assert set(records) == {"Why do my courgettes rot before they grow?", "Best soil for blueberries in pots?",
                            "Which plants deter slugs?"}  # no answer (108), low-score question (109) left out
    courgettes = records["Why do my courgettes rot before they grow?"]
    assert courgettes["response"].startswith("This is poor pollination")  # accepted, not the higher-scored one
    assert courgettes["category"] == "open_qa" and "raised beds & get about six hours" in courgettes["context"]
    assert "rosemary every 40 cm" in records["Which plants deter slugs?"]["response"]


def test_retrieved_passage_as_dolly_context(gardening):
    result = run_cli("build", "-s", "+corpus_qa_export", "--vars", "{dolly_context: retrieved_passage}",
                     cwd=gardening)
    assert result.returncode == 0, result.stderr
    records = _records(gardening)
    blueberries = records["Best soil for blueberries in pots?"]
    assert blueberries["category"] == "closed_qa"
    assert blueberries["instruction"].startswith("Best soil for blueberries in pots?\n\nWhich is the best soil")
    assert "pH 4.5 to 5.5" in blueberries["context"]  # the passage the index returns, not the question
    assert "Which is the best soil" not in blueberries["context"]


def test_unknown_dolly_context_is_refused(gardening):
    result = run_cli("ls", "--vars", "{dolly_context: question}", cwd=gardening)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "use question_body or retrieved_passage" in result.stderr and "models/corpus_qa.sql" in result.stderr
