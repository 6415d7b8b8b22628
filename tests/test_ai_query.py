"""ai_query from SQL, end to end against the real local HTTP stub: typed results, chat messages,
failOnError, cache (persistent, shared, in-flight de-duplication), Databricks dialect, bad input."""

from __future__ import annotations

import json

import duckdb
import pytest
from pydantic import BaseModel

from sqlsynth.config import ProjectConfig
from sqlsynth.errors import CompileError
from sqlsynth.llm import cache, endpoints, usage
from sqlsynth.llm.errors import EndpointError, ModelParametersError, ResponseFormatError

from llm_support import AIConnection, ai, project, stub

QUESTIONS = "STRUCT<reasoning: STRING, questions: ARRAY<STRING>>"


def test_plain_call_returns_varchar():
    with stub() as server, ai(server) as db:
        assert db.sql("select ai_query('t', 'Say hi')") == [("reply: Say hi",)]


def test_response_format_gives_typed_struct_and_unnest_works():
    with stub() as server, ai(server) as db:
        sql = f"select i, ai_query('t', 'seed ' || i, responseFormat := '{QUESTIONS}') as r from range(5) t(i)"
        db.con.execute("create table q as " + db.compile(sql))
        kind = db.con.execute("select typeof(r) from q limit 1").fetchall()[0][0]
        assert kind == "STRUCT(reasoning VARCHAR, questions VARCHAR[])"
        rows = db.con.execute("select i, unnest(r.questions) from q order by all").fetchall()
    assert len(rows) == 15 and rows[0][1].startswith("questions0")


def test_request_as_chat_messages_with_system_prompt():
    with stub() as server, ai(server) as db:
        rows = db.sql("select ai_query('t', [{'role': 'system', 'content': 'be brief'}, "
                      "{'role': 'user', 'content': 'why?'}])")
    assert rows == [("reply: why?",)]


def test_invalid_chat_role_is_an_error():
    with stub() as server, ai(server) as db:
        with pytest.raises(duckdb.Error, match="role"):
            db.sql("select ai_query('t', [{'role': ' assistant', 'content': 'x'}])")


def test_null_request_gives_null_without_a_call():
    with stub() as server, ai(server) as db:
        assert db.sql("select ai_query('t', NULL::VARCHAR)") == [(None,)]
        assert server.stats.requests == 0


def test_fail_on_error_false_returns_result_and_error_message():
    with stub(always_status=500) as server, ai(server, max_retries=1) as db:
        [(value,)] = db.sql("select ai_query('t', 'x', responseFormat := 'STRUCT<content: STRING>', "
                            "failOnError := false)")
    assert value["result"] is None and "HTTP 500" in value["errorMessage"]


def test_fail_on_error_true_names_endpoint_model_rows_and_first_error():
    with stub(always_status=500) as server, ai(server, max_retries=0) as db:
        with pytest.raises(duckdb.Error) as info:
            db.sql("select ai_query('t', 'q' || i) from range(3) t(i)")
    message = str(info.value)
    assert "model 'm'" in message and "endpoint 't'" in message and "3 of 3 rows" in message
    assert "HTTP 500" in message


def test_rerun_is_served_from_the_cache_and_persists_across_connections(tmp_path):
    path = tmp_path / "p.duckdb"
    sql = f"select ai_query('t', 'q' || i, responseFormat := '{QUESTIONS}') as r from range(20) t(i)"
    with stub() as server:
        with ai(server, path) as db:
            first = db.sql(sql)
        assert server.stats.requests == 20
        with ai(server, path) as db:
            assert db.sql(sql) == first
            logged = db.con.execute("select count(*), count(*) filter (status = 'ok') from sqlsynth.calls").fetchall()
        assert server.stats.requests == 20
    assert logged == [(20, 20)]


def test_temperature_does_not_bypass_cache_but_sample_id_does():
    with stub() as server, ai(server) as db:
        db.sql("select ai_query('t', 'x', modelParameters := {'temperature': 0.99})")
        db.sql("select ai_query('t', 'x', modelParameters := {'temperature': 0.99})")
        assert server.stats.requests == 1
        db.sql("select ai_query('t', 'x', modelParameters := {'temperature': 0.99, 'sample_id': i}) "
               "from range(3) t(i)")
        assert server.stats.requests == 4  # sample 0 differs from the call without sample_id


def test_identical_requests_in_a_batch_are_sent_once():
    with stub(latency_s=0.05) as server, ai(server) as db:
        rows = db.sql("select ai_query('t', 'same') from range(200)")
    assert len(rows) == 200 and server.stats.requests == 1


def test_invalid_answers_are_re_asked_then_fail_bounded():
    with stub(rate_invalid_answer=1.0) as server, ai(server, invalid_retries=2) as db:
        [(value,)] = db.sql("select ai_query('t', 'x', responseFormat := 'STRUCT<content: STRING>', "
                            "failOnError := false)")
        requests = server.stats.requests
        statuses = db.con.execute("select status from sqlsynth.calls").fetchall()
    assert value["result"] is None and "does not match" in value["errorMessage"]
    assert requests == 3 and statuses == [("invalid",)] * 3


def test_invalid_answer_retry_recovers():
    with stub(rate_invalid_answer=0.5, seed=3) as server, ai(server, invalid_retries=5) as db:
        rows = db.sql("select ai_query('t', 'q' || i, responseFormat := 'STRUCT<content: STRING>') "
                      "from range(20) t(i)")
    assert all(r[0]["content"].startswith("content") for r in rows)
    assert server.stats.faults["invalid"] > 0


def test_prompt_and_parse_fallback_from_sql():
    with stub(reject_response_format=True) as server, ai(server) as db:
        rows = db.sql(f"select ai_query('t', 'q' || i, responseFormat := '{QUESTIONS}') from range(3) t(i)")
    assert all(len(r[0]["questions"]) == 3 for r in rows)


class Label(BaseModel):
    label: str
    confidence: float


def test_pydantic_model_name_as_response_format():
    with stub() as server, ai(server, models={"Label": Label}) as db:
        [(value,)] = db.sql("select ai_query('t', 'x', responseFormat := 'Label')")
    assert set(value) == {"label", "confidence"}


def test_databricks_dialect_returns_json_string_and_from_json_ddl_works():
    with stub() as server, ai(server) as db:
        sql = ("select from_json(ai_query('t', q, responseFormat => 'STRUCT<content: STRING>', "
               "modelParameters => named_struct('temperature', 0.7, 'max_tokens', 512)), "
               "'STRUCT<content: STRING>').content as response, "
               "ai_query('t', q, responseFormat => 'STRUCT<content: STRING>', "
               "modelParameters => named_struct('temperature', 0.7, 'max_tokens', 512)) as raw "
               "from (select 'hello' as q)")
        [(response, raw)] = db.sql(sql, dialect="databricks")
    assert response.startswith("content") and json.loads(raw) == {"content": response}


def test_databricks_fail_on_error_false_struct():
    with stub(always_status=404) as server, ai(server) as db:
        [(value,)] = db.sql("select ai_query('t', 'x', failOnError => false)", dialect="databricks")
    assert value["result"] is None and "404" in value["errorMessage"]


def test_macro_works_without_the_rewrite():
    with stub() as server, ai(server) as db:
        [(value,)] = db.con.execute(
            "select ai_query('t', 'x', responseFormat := 'STRUCT<content: STRING>')").fetchall()
    assert json.loads(value)["content"].startswith("content")


def test_unknown_endpoint_lists_known_ones_at_compile_and_run_time():
    with stub() as server, ai(server) as db:
        with pytest.raises(EndpointError, match=r"unknown endpoint 'teacher' \(known: default, t\)"):
            db.compile("select ai_query('teacher', 'x')")
        with pytest.raises(duckdb.Error, match="unknown endpoint 'teacher'"):
            db.con.execute("select ai_query('teacher', 'x')").fetchall()


def test_missing_api_key_variable(monkeypatch):
    monkeypatch.delenv("SQLSYNTH_TEST_KEY", raising=False)
    with stub() as server:
        config = project(server.url, api_key_env="SQLSYNTH_TEST_KEY")
        with pytest.raises(EndpointError, match="SQLSYNTH_TEST_KEY is not set"):
            endpoints.get_backend("t", config)


def test_invalid_response_format_and_parameters_fail_at_compile_time():
    with stub() as server, ai(server) as db:
        with pytest.raises(ResponseFormatError, match="not supported") as info:
            db.compile("select ai_query('t', 'x', responseFormat := 'STRUCT<a: MAP<STRING, INT>>')")
        assert info.value.path == "models/m.sql"
        with pytest.raises(ResponseFormatError, match="pydantic model 'Nope'"):
            db.compile("select ai_query('t', 'x', responseFormat := 'Nope')")
        with pytest.raises(ModelParametersError, match="temperature"):
            db.compile("select ai_query('t', 'x', modelParameters := {'temperature': 'hot'})")
        with pytest.raises(CompileError, match="no option 'format'"):
            db.compile("select ai_query('t', 'x', format := 'x')")
        with pytest.raises(CompileError, match="failOnError"):
            db.compile("select ai_query('t', 'x', failOnError := b) from (select true b)")


def test_wrong_parameter_types_from_columns_fail_at_run_time():
    with stub() as server, ai(server) as db:
        with pytest.raises(duckdb.Error, match="max_tokens"):
            db.sql("select ai_query('t', 'x', modelParameters := {'max_tokens': s}) from (select 'many' s)")


def test_budget_max_calls_stops_the_run_with_numbers():
    usage.reset_usage()
    with stub() as server, ai(server, max_calls=5) as db:
        with pytest.raises(duckdb.Error, match=r"10 uncached calls needed now, 0 already made .* max_calls is 5"):
            db.sql("select ai_query('t', 'q' || i) from range(10) t(i)")
        assert server.stats.requests == 0
        db.sql("select ai_query('t', 'q' || i) from range(5) t(i)")
    assert usage.usage_summary()["endpoints"]["t"]["calls"] == 5


def test_usage_summary_counts_calls_cache_and_tokens():
    usage.reset_usage()
    with stub() as server, ai(server, price_per_1k_input_tokens=1.0, price_per_1k_output_tokens=2.0) as db:
        db.sql("select ai_query('t', 'q' || (i % 3)) from range(6) t(i)")
        db.sql("select ai_query('t', 'q' || i) from range(4) t(i)")
    summary = usage.usage_summary()
    model = summary["models"]["m"]
    assert (model["rows"], model["calls"], model["cached"], model["shared"]) == (10, 4, 3, 3)
    assert model["prompt_tokens"] == 4 and model["completion_tokens"] == 8
    assert summary["total"]["cost"] == pytest.approx((4 * 1.0 + 8 * 2.0) / 1000)


def test_secrets_are_not_written_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLSYNTH_TEST_KEY", "sk-super-secret-value")
    path = tmp_path / "p.duckdb"
    with stub(api_key="other") as server:
        config = project(server.url, api_key_env="SQLSYNTH_TEST_KEY", max_retries=0)
        db = AIConnection(config, path)
        try:
            [(value,)] = db.sql("select ai_query('t', 'x', failOnError := false)")
            assert "401" in value["errorMessage"]
        finally:
            db.close()
    assert b"sk-super-secret-value" not in path.read_bytes()
    assert "sk-super-secret-value" not in value["errorMessage"]


def test_cache_stats_and_clear(tmp_path):
    path = tmp_path / "p.duckdb"
    with stub() as server, ai(server, path) as db:
        db.sql("select ai_query('t', 'q' || i) from range(4) t(i)")
        [row] = cache.stats(db.con)
        assert (row["endpoint"], row["cached"], row["calls"], row["errors"]) == ("t", 4, 4, 0)
        assert cache.clear(db.con, "other") == 0
        assert cache.clear(db.con, "t") == 4
        db.sql("select ai_query('t', 'q0')")
        assert server.stats.requests == 5


def test_default_endpoint_is_the_bundled_local_model():
    config = ProjectConfig(name="p")
    default = endpoints.resolve("default", config)
    assert (default.provider, default.model) == ("transformers", "smollm2-135m-instruct")


@pytest.mark.model
def test_default_endpoint_answers_from_sql_with_schema_valid_structs():
    """The bundled SmolLM2 through ai_query: plain text, and typed structs that are all schema-valid."""
    db = AIConnection(ProjectConfig(name="p"))
    try:
        [(hello,)] = db.sql("select ai_query('default', 'Say hi', modelParameters := {'max_tokens': 12})")
        rows = db.sql("select ai_query('default', 'Give two short questions about ' || topic, "
                      f"responseFormat := '{QUESTIONS}', modelParameters := {{'max_tokens': 40}}) "
                      "from (values ('savings'), ('loans')) t(topic)")
    finally:
        db.close()
    assert isinstance(hello, str) and hello.strip()
    assert len(rows) == 2 and all(isinstance(r[0]["questions"], list) for r in rows)


def test_cancel_all_interrupts_a_running_statement_and_keeps_answers():
    import threading
    import time

    from sqlsynth.llm.batch import cancel_all

    with stub(latency_s=0.2) as server, ai(server, max_concurrency=2) as db:
        threading.Timer(1.5, cancel_all).start()  # after the client start-up and a few answers
        started = time.perf_counter()
        with pytest.raises(duckdb.Error, match="interrupted"):
            db.sql("select ai_query('t', 'q' || i) from range(100) t(i)")
        assert time.perf_counter() - started < 5  # not the 10 s the batch would take
        kept = db.con.execute("select count(*) from sqlsynth.cache").fetchall()[0][0]
        assert kept >= 2
        assert db.sql("select ai_query('t', 'later')") == [("reply: later",)]  # later batches run
