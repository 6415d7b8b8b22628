"""ai_query against a misbehaving or limiting provider, through the real `sqlsynth` entry point and the
real local test server: finish_reason, circuit breaker, Retry-After cap, parameter vocabulary."""

from __future__ import annotations

from pathlib import Path

from test_ai_query_cli import cli

from helpers import query
from llm_support import stub


def make(tmp_path: Path, url: str, models: dict[str, str], endpoint: str = "", retries: int = 2) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "project.yml").write_text(
        "name: p\nendpoints:\n  teacher:\n    provider: openai\n"
        f"    base_url: {url}\n    model: stub\n    max_retries: {retries}\n    retry_base_s: 0.01\n" + endpoint)
    for name, sql in models.items():
        (tmp_path / "models" / f"{name}.sql").write_text("{{ config(materialized='table') }}\n" + sql)
    return tmp_path


def q(project: Path, sql: str) -> list[tuple]:
    return query(project, sql, "target/p.duckdb")


def test_finish_reason_in_the_call_log_and_next_to_the_answer(tmp_path):
    sql = ("select i, ai_query('teacher', 'tell me about ' || i || ' things', failOnError := false,"
           " modelParameters := {'max_tokens': {{ 3 if var('short', false) else 50 }}}) as r"
           " from range(2) t(i)")
    with stub(cut_at_max_tokens=True) as server:
        project = make(tmp_path, server.url, {"answers": sql})
        done = cli(project, "run", "--vars", "{short: true}")
        assert done.returncode == 0, done.stdout + done.stderr
        rows = q(project, "select r.result, r.finishReason from answers order by i")
        assert rows == [("reply: tell me", "length"), ("reply: tell me", "length")]
        assert cli(project, "run").returncode == 0
        rows = q(project, "select r.finishReason from answers")
        assert rows == [("stop",), ("stop",)]
        log = q(project, "select finish_reason, count(*) from sqlsynth.calls group by 1 order by 1")
        assert log == [("length", 2), ("stop", 2)]
        # A re-run answers from the cache, which kept the finish reason.
        assert cli(project, "run").returncode == 0 and server.stats.requests == 4
        assert q(project, "select r.finishReason from answers") == [("stop",), ("stop",)]
        shown = cli(project, "show", "select ai_query('teacher', 'a b c d e f', failOnError := false, "
                    "modelParameters := {'max_tokens': 2}).finishReason as f")
        assert shown.returncode == 0 and "length" in shown.stdout, shown.stdout + shown.stderr


ROWS = "select i, ai_query('teacher', 'q ' || i{extra}) as r from range({n}) t(i)"


def test_a_wrong_key_stops_the_endpoint_once_for_the_whole_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-wrong-key-value")
    models = {"a": ROWS.format(n=300, extra=""), "b": ROWS.format(n=300, extra=" || 'b'")}
    with stub(api_key="sk-right") as server:
        project = make(tmp_path, server.url, models, "    api_key_env: TEACHER_KEY\n    max_concurrency: 4\n")
        done = cli(project, "run")
        requests = server.stats.requests
    assert done.returncode == 1, done.stdout + done.stderr
    assert requests <= 4  # at most the requests already in flight, not one per row
    assert done.stderr.count("stopped for this run") == 1 and "401" in done.stderr
    assert "sk-wrong-key-value" not in done.stdout + done.stderr


def test_an_unsupported_response_format_is_learned_once(tmp_path):
    sql = ROWS.format(n=40, extra=", responseFormat := 'STRUCT<content: STRING>'")
    with stub(reject_response_format=True, latency_s=0.05) as server:
        project = make(tmp_path, server.url, {"a": sql}, "    max_concurrency: 16\n")
        done = cli(project, "run")
        rejected = server.stats.statuses[400]
    assert done.returncode == 0, done.stdout + done.stderr
    assert rejected == 1
    assert len(q(project, "select r.content from a where r.content is not null")) == 40


def test_retry_after_waits_are_capped_and_the_endpoint_named(tmp_path):
    with stub(rate_429=1.0, retry_after_s=100) as server:
        project = make(tmp_path, server.url, {"a": ROWS.format(n=2, extra="")},
                       "    retry_max_s: 0.2\n")
        done = cli(project, "run")
    assert done.returncode == 1
    assert "endpoint 'teacher' is throttling" in done.stderr
    assert "capped at retry_max_s=0.2" in done.stderr
    assert "429" in done.stdout + done.stderr


def test_parameter_spellings_share_one_cache_key_and_typos_fail_at_compile_time(tmp_path):
    sql = "select ai_query('teacher', 'q ' || i, modelParameters := {{'{key}': 64}}) as r from range(3) t(i)"
    with stub() as server:
        project = make(tmp_path, server.url, {"a": sql.format(key="max_tokens")},
                       "    parameters: {max_new_tokens: 256, temperature: 0.5}\n")
        assert cli(project, "run").returncode == 0
        for spelling in ("max_new_tokens", "max_completion_tokens"):
            (project / "models" / "a.sql").write_text(sql.format(key=spelling))
            again = cli(project, "run")
            assert again.returncode == 0, again.stdout + again.stderr
        assert server.stats.requests == 3  # same effective parameters, same cached answers

        (project / "models" / "a.sql").write_text(sql.format(key="temprature"))
        typo = cli(project, "compile")
        assert typo.returncode == 2 and server.stats.requests == 3
        assert "temprature" in typo.stderr and "did you mean 'temperature'" in typo.stderr
        assert "a.sql" in typo.stderr and "Traceback" not in typo.stderr


def test_answers_cached_under_an_old_spelling_are_migrated_not_paid_again(tmp_path):
    import duckdb

    from sqlsynth.llm.cache import Cache, CacheRow, KeyMaker

    with stub() as server:
        project = make(tmp_path, server.url, {"a": "select 1 as x"})
        assert cli(project, "run").returncode == 0
        identity = {"provider": "openai", "base_url": server.url.rstrip("/"), "model": "stub"}
        messages = [{"role": "user", "content": "q 0"}]
        old = {"max_new_tokens": 64}  # how keys were hashed before the one vocabulary
        con = duckdb.connect(str(project / "target" / "p.duckdb"))
        cache = Cache(con)
        cache.write([CacheRow(KeyMaker(identity, None).key(messages, old), "teacher", identity, messages,
                              old, None, "the old answer", 1, 1, "stop")], [])
        cache.close()
        con.close()
        (project / "models" / "a.sql").write_text(
            "{{ config(materialized='table') }}\n"
            "select ai_query('teacher', 'q 0', modelParameters := {'max_new_tokens': 64}) as r")
        done = cli(project, "run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.requests == 0
        assert q(project, "select r from a") == [("the old answer",)]
        assert q(project, "select count(*) from sqlsynth.cache") == [(2,)]  # moved under the new key


def test_a_json_schema_with_an_invalid_type_fails_at_compile_time(tmp_path):
    fmt = ('{"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "strng"}}}, '
           '"required": ["tags"]}')
    with stub() as server:
        project = make(tmp_path, server.url, {"a": f"select ai_query('teacher', 'x', responseFormat := '{fmt}') as r"})
        done = cli(project, "compile")
        assert server.stats.requests == 0
    assert done.returncode == 2, done.stdout + done.stderr
    assert "$.properties.tags.items.type is 'strng'" in done.stderr and "did you mean 'string'" in done.stderr
    assert "a.sql" in done.stderr and "Traceback" not in done.stderr


def test_adaptive_concurrency_converges_to_the_rate_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLSYNTH_PROGRESS_INTERVAL", "0.5")
    # The server allows 50 requests/s with 1 s of burst, so the opening 64 requests are always
    # throttled, however slow a loaded box makes the client; 64 in flight at 0.2 s would ask 320/s.
    rows, rate = 400, 50.0
    with stub(rate_limit=rate, latency_s=0.2) as server:
        project = make(tmp_path, server.url, {"a": ROWS.format(n=rows, extra="")},
                       "    max_concurrency: 64\n", retries=8)
        done = cli(project, "run")
        requests = server.stats.requests
    assert done.returncode == 0, done.stdout + done.stderr
    # Only the opening burst (64 sent before the first 429 arrives: 14 over the burst) and a few paced
    # probes above the limit are refused; a client that did not adapt is refused far more often.
    assert requests <= 1.1 * rows, f"{requests} requests for {rows} rows"
    assert "/64 in flight" in done.stderr  # the progress line shows the lowered limit
    assert "endpoint 'teacher' is throttling" in done.stderr
    # The wall-time bound (within 1.2 x rows / rate) is measured in bench/ai_query_adaptive.py, not here.
