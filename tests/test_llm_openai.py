"""The OpenAI-compatible backend against the real local HTTP stub: retries, faults, fatal errors,
response_format fallback, limits, secrets."""

from __future__ import annotations

import socket
import time

import pytest

from sqlsynth.config import EndpointConfig
from sqlsynth.llm.openai_backend import OpenAIBackend, RateLimiter
from sqlsynth.llm.types import LLMRequest

from llm_support import FAST, stub

SCHEMA = {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"],
          "additionalProperties": False}


def backend(url: str, key: str = "sk-test-secret-123", **settings) -> OpenAIBackend:
    endpoint = EndpointConfig(provider="openai", base_url=url, model="stub", **{**FAST, **settings})
    return OpenAIBackend(endpoint, "t", key)


def ask(b: OpenAIBackend, prompts: list[str], schema=None):
    return b.generate_many([LLMRequest(({"role": "user", "content": p},), {}, schema) for p in prompts])


def test_plain_answers_and_usage():
    with stub() as server:
        results = ask(backend(server.url), ["hello", "world"])
    assert [r.text for r in results] == ["reply: hello", "reply: world"]
    assert all(r.error is None and r.prompt_tokens == 1 and r.attempts == 1 for r in results)


@pytest.mark.parametrize("fault", ["rate_429", "rate_500", "rate_malformed", "rate_truncated",
                                   "rate_empty_choices"])
def test_transient_faults_are_retried_until_success(fault):
    with stub(**{fault: 0.5}, seed=1) as server:
        # 20 retries: at a 50% fault rate a row fails 11 times in a row with p = 0.05%, i.e. ~7% of the
        # runs of these five cases saw one failed row with 10; with 20 it is ~1e-5.
        results = ask(backend(server.url, max_retries=20), [f"q{i}" for i in range(30)])
        faults = sum(server.stats.faults.values())
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    assert faults > 0 and sum(r.attempts for r in results) == 30 + faults


def test_retry_after_is_honoured():
    with stub(rate_429=1.0, retry_after_s=0.3) as server:
        started = time.perf_counter()
        [result] = ask(backend(server.url, max_retries=1, retry_base_s=0.001, retry_max_s=5), ["x"])
        elapsed = time.perf_counter() - started
    assert result.error and "429" in result.error and result.attempts == 2
    assert elapsed >= 0.3  # our own backoff would have waited ~1 ms


def test_retry_after_is_capped_at_retry_max_s():
    with stub(rate_429=1.0, retry_after_s=100) as server:
        started = time.perf_counter()
        [result] = ask(backend(server.url, max_retries=2, retry_max_s=0.1), ["x"])
        elapsed = time.perf_counter() - started
    assert result.error and "429" in result.error and result.attempts == 3
    assert elapsed < 60  # two waits of 0.1 s, not of 100 s


def test_hanging_server_times_out_and_reports():
    with stub(rate_hang=1.0) as server:
        [result] = ask(backend(server.url, timeout_s=0.2, max_retries=1), ["x"])
    assert "timeout_s=0.2" in result.error and result.attempts == 2


@pytest.mark.parametrize("status, words", [(401, "api_key_env"), (404, "check base_url"), (400, "HTTP 400")])
def test_fatal_statuses_fail_fast_without_retries(status, words):
    with stub(always_status=status) as server:
        results = ask(backend(server.url, max_retries=5), ["a", "b", "c"])
        requests = server.stats.requests
    assert all(r.error and words in r.error for r in results)
    assert requests <= 3  # no retries: a 401 does not get better by asking again


def test_api_key_never_appears_in_errors():
    with stub(api_key="the-right-key") as server:
        [result] = ask(backend(server.url, key="sk-wrong-but-secret"), ["x"])
    assert "401" in result.error and "sk-wrong-but-secret" not in result.error


def test_unreachable_base_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [result] = ask(backend(f"http://127.0.0.1:{port}/v1", max_retries=1), ["x"])
    assert "127.0.0.1" in result.error and result.attempts == 2


def test_json_schema_response_format_is_sent():
    with stub() as server:
        [result] = ask(backend(server.url), ["x"], SCHEMA)
    assert result.text.startswith('{"content": "content')


def test_falls_back_to_prompt_and_parse_when_response_format_is_rejected():
    with stub(reject_response_format=True) as server:
        b = backend(server.url)
        results = ask(b, ["x", "y"], SCHEMA)
    assert not b.json_schema_supported
    assert all(r.error is None and "```json" in r.text for r in results)


def test_concurrency_is_bounded_by_max_concurrency():
    with stub(latency_s=0.1) as server:
        started = time.perf_counter()
        ask(backend(server.url, max_concurrency=4), [f"q{i}" for i in range(8)])
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.2  # two waves of 4 (one wave of 8 would take 0.1 s)


def test_requests_per_minute_limit_spaces_requests():
    with stub() as server:
        b = backend(server.url, requests_per_minute=600)  # one request per 100 ms
        started = time.perf_counter()
        ask(b, ["a", "b", "c", "d"])
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.3


def test_strict_mode_only_for_closed_schemas():
    from sqlsynth.llm.openai_backend import strict_compatible
    from sqlsynth.llm.schema import parse_response_format

    assert strict_compatible(parse_response_format("STRUCT<a: STRING, b: ARRAY<STRUCT<c: INT>>>").json_schema)
    assert not strict_compatible({"type": "object", "properties": {"a": {"type": "string"}}})


def test_tokens_per_minute_bucket_waits_for_refill():
    import asyncio

    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=600)  # 10 tokens/s

    async def spend() -> float:
        await limiter.acquire(600)  # the full first minute's worth, at once
        started = time.perf_counter()
        await limiter.acquire(3)  # needs 0.3 s of refill
        return time.perf_counter() - started

    assert 0.25 <= asyncio.run(spend()) < 3.0
