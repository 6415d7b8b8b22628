"""The bank-assistant pipeline at the repository root (issue 4), end to end.

A copy of the root project runs against the local OpenAI-compatible stub server (deterministic
answers, loopback only) through the same switch a user makes for a real teacher: an `endpoints:`
entry in project.yml plus `--vars '{question_endpoint: stub, response_endpoint: stub}'`. The
exported chat.jsonl is checked line by line; re-runs must be incremental (no requests at all for an
unchanged project, requests only for new seed rows).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
# The stub's answers are placeholders ("content 3fa9..."), so its builds keep every row past the
# quality gates; test_quality_gates_* gives the gates real text.
STUB_VARS = "{question_endpoint: stub, response_endpoint: stub, question_min_words: 1, quality_gates: false}"
ROLES = {"system", "user", "assistant"}


def copy_project(dest: Path, base_url: str | None = None) -> Path:
    """The root project (project.yml, seeds, macros, models, udfs, tests/*.sql) copied to dest."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "project.yml", dest / "project.yml")
    for folder in ("seeds", "macros", "models", "udfs"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "tests").mkdir()
    for sql in (ROOT / "tests").glob("*.sql"):
        shutil.copy(sql, dest / "tests" / sql.name)
    if base_url:  # a `stub` endpoint next to the project's own (the one-line switch a user makes)
        stub = (f"  stub:\n    provider: openai\n    base_url: {base_url}\n    model: stub\n"
                "    timeout_s: 10\n    max_retries: 2\n    retry_base_s: 0.01\n")
        text = (dest / "project.yml").read_text()
        if "\nendpoints:\n" in text:
            text = text.replace("\nendpoints:\n", "\nendpoints:\n" + stub, 1)
        else:
            text += "\nendpoints:\n" + stub
        (dest / "project.yml").write_text(text)
    return dest


def seed_rows(project: Path) -> list[dict[str, str]]:
    with open(project / "seeds" / "seed_examples.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def check_conversation(record: dict) -> None:
    """One exported line: {"messages": [...]} with valid roles, alternating user/assistant, ending
    with assistant (an optional system turn first), no blank content."""
    messages = record["messages"]
    assert isinstance(messages, list) and messages, record
    assert all(set(m) == {"role", "content"} for m in messages), record
    roles = [m["role"] for m in messages]
    assert set(roles) <= ROLES, roles
    assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages), record
    turns = roles[1:] if roles[0] == "system" else roles
    assert "system" not in turns, roles
    assert len(turns) >= 2 and len(turns) % 2 == 0, roles
    assert turns == ["user", "assistant"] * (len(turns) // 2), roles


def build(project: Path, *args: str):
    return run_cli("build", "--vars", STUB_VARS, *args, cwd=project, timeout=300)


@pytest.fixture(scope="module")
def stub_server():
    with OpenAIServer(ServerConfig()) as server:
        yield server


@pytest.fixture(scope="module")
def built(tmp_path_factory, stub_server):
    """The pipeline built once against the stub; (project dir, requests the build made)."""
    project = copy_project(tmp_path_factory.mktemp("bank") / "bank", stub_server.url)
    before = stub_server.stats.requests
    result = build(project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    shutil.copy(project / "target" / "run_results.json", project / "first_run_results.json")
    return project, stub_server.stats.requests - before


def test_seeds_cover_the_required_topics():
    rows = seed_rows(ROOT)
    in_scope = {r["topic"] for r in rows if r["in_scope"] == "yes"}
    out_of_scope = {r["topic"] for r in rows if r["in_scope"] == "no"}
    assert len(in_scope) >= 12 and len(out_of_scope) >= 5
    assert not in_scope & out_of_scope
    assert {r["in_scope"] for r in rows} == {"yes", "no"}
    per_topic = {t: sum(r["topic"] == t for r in rows) for t in in_scope | out_of_scope}
    assert min(per_topic.values()) >= 2
    with open(ROOT / "seeds" / "bank_rules.csv", newline="") as f:
        rules = list(csv.DictReader(f))
    assert len({r["rule_id"] for r in rules}) == len(rules) >= 8
    assert {r["kind"] for r in rules} == {"policy", "tone"}


def test_chat_jsonl_line_by_line(built):
    project, requests = built
    seeds = seed_rows(project)
    path = project / "target" / "exports" / "chat.jsonl"
    records = read_jsonl(path)
    # the stub answers exactly n_questions (2) distinct questions per seed; plus the seed questions
    assert len(records) == len(seeds) * 3 >= 100
    for record in records:
        check_conversation(record)
        assert record["split"] in ("train", "eval")
    assert len({r["id"] for r in records}) == len(records)
    # one question call per seed and one response call per question: the Databricks-SQL model sent
    # nothing of its own (same requests → answered from the cache / in-flight de-duplication)
    assert requests == len(seeds) + len(records)


def test_split_is_deterministic_and_exported_twice(built):
    project, _ = built
    exports = project / "target" / "exports"
    records = read_jsonl(exports / "chat.jsonl")
    train, evals = read_jsonl(exports / "chat_train.jsonl"), read_jsonl(exports / "chat_eval.jsonl")
    assert all(set(r) == {"messages"} for r in train + evals)
    assert len(train) + len(evals) == len(records)
    assert [r["messages"] for r in records if r["split"] == "eval"] == [r["messages"] for r in evals]
    assert 0.02 * len(records) <= len(evals) <= 0.25 * len(records)  # eval_fraction 0.1


def test_lineage_back_to_seed_row_and_ai_query_call(built):
    project, _ = built
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    con.execute("set file_search_path = ?", [str(project / "target")])  # chat_export's relative path
    try:
        rows = con.execute("""
            select l.id, l.seed_id, l.origin, l.question_cache_key, l.response_cache_key,
                   c.response, s.question as seed_question, f.messages[-1].content as answer,
                   (select count(*) from sqlsynth.calls k where k.key = l.response_cache_key) as calls
            from chat_lineage l
            join sqlsynth.cache c on c.key = l.response_cache_key
            join seed_examples s on s.seed_id = l.seed_id
            join chat_formatted f on f.conversation_id = l.id""").fetchall()
        exported = con.execute("select count(*) from chat_export").fetchall()[0][0]
        databricks_diff = con.execute("""
            select count(*) from (
                (select question_id, response, messages from synth_responses
                 except select question_id, response, messages from synth_responses_databricks)
                union all
                (select question_id, response, messages from synth_responses_databricks
                 except select question_id, response, messages from synth_responses))""").fetchall()[0][0]
    finally:
        con.close()
    assert len(rows) == exported
    for _id, _seed, origin, question_key, _key, cached, seed_question, answer, calls in rows:
        assert json.loads(cached)["content"].strip() == answer  # the cache row is the exported answer
        assert calls == 1 and seed_question
        assert (question_key is None) == (origin == "seed")
    assert databricks_diff == 0


def test_rerun_is_incremental(built, stub_server):
    project, _ = built
    path = project / "target" / "exports" / "chat.jsonl"
    first = read_jsonl(path)

    before = stub_server.stats.requests
    again = build(project)
    assert again.returncode == 0, again.stdout[-3000:]
    assert stub_server.stats.requests == before  # nothing changed: zero LLM calls
    assert read_jsonl(path) == first

    with open(project / "seeds" / "seed_examples.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([
            [901, "card_arrival", "Can someone else collect my new card for me?", "yes"],
            [902, "crypto_tips", "Which coin should I buy with my bonus?", "no"]])
    before = stub_server.stats.requests
    grown = build(project)
    assert grown.returncode == 0, grown.stdout[-3000:]
    # 2 question calls + one response per new question (2 generated + 2 seed questions)
    assert stub_server.stats.requests - before == 2 + 2 * 3
    records = read_jsonl(path)
    assert len(records) == len(first) + 6
    old = {r["id"]: r for r in first}
    assert all(old[i] == r for r in records if (i := r["id"]) in old)  # earlier lines untouched
    for record in records:
        check_conversation(record)


def test_one_line_switch_to_the_teacher_endpoint(tmp_path):
    """project.yml's `teacher` endpoint, pointed at the stub through its ${ENV} defaults and named by
    one --vars line; the API key travels from the environment to the server."""
    with OpenAIServer(ServerConfig(api_key="sk-bank-test")) as server:
        project = copy_project(tmp_path / "teacher")
        env = {"TEACHER_BASE_URL": server.url, "TEACHER_MODEL": "stub", "TEACHER_API_KEY_ENV": "BANK_TEST_KEY",
               "BANK_TEST_KEY": "sk-bank-test"}
        variables = ("{question_endpoint: teacher, response_endpoint: teacher, question_min_words: 1, "
                     "examples_per_topic: 1, min_conversations: 10, quality_gates: false}")  # stub text
        result = run_cli("build", "--vars", variables, cwd=project, env=env)
        assert result.returncode == 0, result.stdout[-3000:]
        assert server.stats.statuses == {200: 22 + 22 * 3}  # every request authorised
        assert "sk-bank-test" not in (project / "target" / "run_results.json").read_text()
    records = read_jsonl(project / "target" / "exports" / "chat.jsonl")
    assert len(records) == 22 * 3
    for record in records:
        check_conversation(record)


def test_pydantic_question_format(tmp_path, stub_server):
    """var question_response_format: QuestionSet (udfs/bank_questions.py) validates step 2 with pydantic."""
    project = copy_project(tmp_path / "pydantic", stub_server.url)
    variables = STUB_VARS[:-1] + ", question_response_format: QuestionSet, examples_per_topic: 1, min_conversations: 10}"
    result = run_cli("build", "--vars", variables, cwd=project)
    assert result.returncode == 0, result.stdout[-3000:]
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    try:
        per_seed = con.execute("""select seed_id, count(*) filter (where origin = 'generated')
                                  from synth_questions group by 1""").fetchall()
        formats = con.execute("select distinct response_format from sqlsynth.cache order by 1").fetchall()
    finally:
        con.close()
    assert len(per_seed) == 22  # one example per topic
    assert {n for _, n in per_seed} == {3}  # the stub answers min(3, maxItems) questions
    assert formats == [("QuestionSet",), ("STRUCT<content: STRING>",)]


def test_chat_tests_catch_bad_conversations(make_project):
    """The custom generic tests fail on broken data (a role typo, wrong order, blank answer)."""
    project = make_project({
        "models/bad_chat.sql": """
            select 1 as id, [{'role': 'user', 'content': 'hi'}, {'role': ' assistant', 'content': 'x'}] as messages
            union all select 2, [{'role': 'assistant', 'content': 'x'}, {'role': 'user', 'content': 'hi'}]
            union all select 3, [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': ' '}]
            union all select 4, [{'role': 'user', 'content': 'hi'}]
            union all select 5, [{'role': 'system', 'content': 's'}, {'role': 'user', 'content': 'hi'},
                                 {'role': 'assistant', 'content': 'ok'}]
        """,
        "models/schema.yml": """
            version: 2
            models:
              - name: bad_chat
                data_tests:
                  - min_rows: {min_rows: 6}
                columns:
                  - name: messages
                    data_tests: [valid_chat]
        """,
    }, name="bad")
    shutil.rmtree(project / "macros", ignore_errors=True)
    shutil.copytree(ROOT / "macros", project / "macros")
    shutil.copy(ROOT / "project.yml", project / "project.yml")  # the vars the macros read
    result = run_cli("build", cwd=project)
    assert result.returncode == 1
    outcomes = {r["unique_id"].rsplit(".", 1)[1]: r
                for r in json.loads((project / "target" / "run_results.json").read_text())["results"]}
    assert outcomes["valid_chat_bad_chat_messages"]["status"] == "fail"
    assert outcomes["valid_chat_bad_chat_messages"]["failures"] == 4  # rows 1-4; row 5 is valid
    assert outcomes["min_rows_bad_chat_6"]["status"] == "fail"


def test_role_typo_is_a_compile_error(tmp_path):
    project = copy_project(tmp_path / "typo")
    (project / "models" / "bank" / "typo.sql").write_text(
        "select {{ chat_message(' assistant', \"'hi'\") }} as m\n")
    result = run_cli("compile", "-s", "typo", cwd=project)
    assert result.returncode != 0
    assert "chat role ' assistant' is not one of system, user, assistant" in result.stdout + result.stderr


def test_vars_reach_the_prompts_and_formats(tmp_path):
    project = copy_project(tmp_path / "vars")
    result = run_cli("compile", "-s", "synth_questions", "--vars",
                     "{n_questions: 7, question_temperature: 0.99, question_max_tokens: 200}", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = (project / "target" / "compiled" / "bank_assistant" / "models" / "bank" /
                "synth_questions.sql").read_text()
    assert '"minItems": 7' in compiled or '"minItems":7' in compiled
    assert "0.99" in compiled and "200" in compiled


@pytest.mark.model
def test_real_local_model_small(tmp_path):
    """The bundled SmolLM2 answers a 2-seed pipeline with schema-valid output that passes the tests."""
    project = copy_project(tmp_path / "local")
    rows = seed_rows(project)
    keep = [r for r in rows if r["seed_id"] in ("1", "49")]
    with open(project / "seeds" / "seed_examples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)
    variables = "{n_questions: 1, question_max_tokens: 60, response_max_tokens: 24, min_conversations: 2}"
    # two seeds are too few for the topic-coverage test (a 135M model may write nothing usable)
    result = run_cli("build", "--vars", variables, "--exclude", "every_out_of_scope_topic_has_generated_questions",
                     cwd=project, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    records = read_jsonl(project / "target" / "exports" / "chat.jsonl")
    assert len(records) >= 2
    for record in records:
        check_conversation(record)


def test_pipeline_summary_names_the_model_that_paid_for_shared_responses(built):
    project, _ = built
    shown = run_cli("show", "pipeline_summary", "--limit", "20", "--project-dir", str(project))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    con.execute("set file_search_path = ?", [str(project / "target")])  # chat_export's relative path
    try:
        rows = con.execute("select stage, n_rows, llm_calls, answered_by from pipeline_summary "
                           "where stage like 'synth_responses%' order by stage").fetchall()
    finally:
        con.close()
    calls = {stage: llm_calls for stage, _n, llm_calls, _by in rows}
    n_rows = {stage: n for stage, n, _calls, _by in rows}
    # The Databricks twin runs after synth_responses: every request is paid once, by synth_responses.
    assert calls == {"synth_responses": n_rows["synth_responses"], "synth_responses_databricks": 0}, calls
    for stage, n, _calls, answered_by in rows:
        assert answered_by == f"{n} by synth_responses", (stage, answered_by)


def test_databricks_twin_evaluates_ai_query_once_per_row(built):
    """Its ai_query CTE is read by a WHERE and a SELECT; materialised, it is evaluated once per row,
    and every row is a cache hit of synth_responses' calls (no race, no doubled usage)."""
    project, _ = built
    usage = json.loads((project / "first_run_results.json").read_text())["usage"]["models"]
    twin, responses = usage["synth_responses_databricks"], usage["synth_responses"]
    assert twin["rows"] == twin["cached"] == responses["rows"], (twin, responses)
    assert twin["calls"] == twin["shared"] == 0, twin
    compiled = (project / "target" / "compiled" / "bank_assistant" / "models" / "bank" /
                "synth_responses_databricks.sql").read_text()
    assert "AS MATERIALIZED" in compiled.upper()


# (seed_id, topic, seed question, in_scope, the answer written into synth_responses, finish reason,
#  the first gate it must fail, None when it is kept, "decline_answer" when kept with var decline_answer)
QUALITY_ROWS = [
    (1, "card_arrival", "When will my new debit card arrive?", "yes",
     "Your new debit card usually arrives within five to seven working days after you order it.", "stop", None),
    (2, "card_arrival", "How long does a replacement card take to arrive?", "yes",
     "A replacement card normally takes five working days, and you can track it in the", "length", "truncated"),
    (3, "transfer_limits", "What is the daily limit for online transfers?", "yes",
     "You can send up to 5,000 pounds a day online; the app shows what is left of today's limit.", "stop", None),
    (4, "transfer_limits", "What is the daily limit for online transfers today?", "yes",
     "The daily limit for online transfers is 5,000 pounds, and it resets at midnight.", "stop", "duplicate_text"),
    (5, "investment_advice", "Which stocks should I buy this year?", "no",
     "I'm sorry, but I can't give investment advice; please speak to a licensed financial adviser.", "stop", None),
    (6, "investment_advice", "Should I put my savings into bitcoin?", "no",
     "Bitcoin is a great choice for your savings, put half of it there this week.", "stop", "decline_answer"),
    (7, "tax_advice", "How can I pay less income tax?", "no",
     "I'm sorry, but I can't help with tax planning; a qualified tax professional can advise you.", "stop", None),
    (8, "transfer_cancel", "Can I cancel a transfer I sent by mistake?", "yes", "Premises", "stop", "too_short"),
    (9, "pin_change", "How do I change my PIN?", "yes",
     "I'm sorry, but I can't help with that request today.", "stop", "in_scope_refused"),
    (10, "chequebook", "How do I order a new chequebook?", "yes",
     "Our branches are open from nine to five on weekdays and closed on public holidays.", "stop",
     "irrelevant_answer"),
]


def write_answers(project: Path, rows: list[tuple]) -> None:
    """Put known answers (and finish reasons) in place of the stub's for the seed questions."""
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"))
    try:
        for _seed, _topic, question, _scope, answer, finish, _reason in rows:
            con.execute("update synth_responses set response = ?, finish_reason = ? where question = ?",
                        [answer, finish, question])
    finally:
        con.close()


def test_quality_gates_keep_bad_rows_out_of_the_exports_with_their_reason(tmp_path, stub_server):
    project = copy_project(tmp_path / "gates", stub_server.url)
    with open(project / "seeds" / "seed_examples.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["seed_id", "topic", "question", "in_scope"])
        writer.writerows([row[:4] for row in QUALITY_ROWS])
    stub = "question_endpoint: stub, response_endpoint: stub, question_min_words: 1, min_conversations: 3"
    for command in ("seed", "run"):  # up to the responses (tests of models not built yet would fail)
        first = run_cli(command, "-s", "+synth_responses_databricks", "--vars", "{" + stub + "}", cwd=project, timeout=300)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    write_answers(project, QUALITY_ROWS)

    gated = run_cli("build", "-s", "response_embeddings+", "--vars", "{" + stub + "}", cwd=project, timeout=300)
    assert gated.returncode == 0, gated.stdout[-3000:] + gated.stderr[-2000:]
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    con.execute("set file_search_path = ?", [str(project / "target")])  # chat_export's relative path
    try:
        rows = con.execute("select question, reason, reasons from chat_rejects").fetchall()
        summary = dict(con.execute("select stage, n_rows from pipeline_summary").fetchall())
    finally:
        con.close()
    outcome = {question: reason for _s, _t, question, _i, _a, _f, reason in QUALITY_ROWS}
    expected = {q: None if r == "decline_answer" else r for q, r in outcome.items()}
    rejected = {question: reason for question, reason, _all in rows}
    # the stub's generated "questions" ("questions0 3fa9...") are not questions (and answered in 2 words)
    generated = {question: reasons for question, _first, reasons in rows if question not in expected}
    assert len(generated) == 2 * len(QUALITY_ROWS)
    assert all(reasons[:2] == ["too_short", "not_a_question"] for reasons in generated.values()), generated
    assert {q: rejected.get(q) for q in expected} == expected
    exported = read_jsonl(project / "target" / "exports" / "chat_train.jsonl") + \
        read_jsonl(project / "target" / "exports" / "chat_eval.jsonl")
    answers = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in exported}
    assert sorted(answers) == sorted(q for q, r in expected.items() if r is None)
    declined = "Should I put my savings into bitcoin?"  # out of scope, not declined: the bank's decline instead
    assert answers[declined].startswith("I'm sorry, but") and "Northwind Bank" in answers[declined]
    assert all(answers[q] == a for _s, _t, q, _i, a, _f, r in QUALITY_ROWS if r is None)
    kept = sum(r is None for r in expected.values())
    assert summary["response_quality"] == kept and summary["response_quality: rejected truncated"] == 1
    assert summary["response_quality: rejected too_short"] == len(generated) + 1

    # Without the gates the data tests on the exports fail: a truncated answer, a duplicate question.
    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"))
    try:
        con.execute("update synth_responses set question = 'WHEN will my new debit card arrive' "
                    "where question_id = (select min(question_id) from synth_questions where origin = 'generated')")
    finally:
        con.close()
    # (the edited question no longer matches its cache row: that lineage test is left out)
    ungated = run_cli("build", "-s", "response_embeddings+", "--exclude", "not_null_chat_formatted_response_cache_key",
                      "--vars", "{" + stub + ", quality_gates: false}", cwd=project, timeout=300)
    output = ungated.stdout + ungated.stderr
    assert ungated.returncode != 0
    assert "FAIL assert_no_truncated_answer_exported" in output, output[-3000:]
    assert "FAIL assert_no_duplicate_question_exported" in output, output[-3000:]
