"""One parameter vocabulary (issue 12 §2): aliases canonical before merging and hashing, endpoint defaults
merged once (by the engine, never again by a backend), options checked at compile time with did-you-mean.
The issue's example: an endpoint with ``max_new_tokens: 256`` and a call with ``{'max_tokens': 64}``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import duckdb
import pytest
from test_ai_query_cli import cli

from sqlsynth.config import ProjectConfig
from sqlsynth.llm.batch import BatchAnswerer
from sqlsynth.llm.cache import Cache
from sqlsynth.llm.local.options import parse_options, supported_parameters
from sqlsynth.llm.params import SUPPORTED, effective, validate_parameters

from helpers import query
from llm_support import stub

SPELLINGS = ("max_tokens", "max_new_tokens", "max_completion_tokens")


def test_the_local_backend_declares_exactly_the_options_it_reads():
    assert supported_parameters() == SUPPORTED["transformers"]


def test_the_issue_example_merges_once_and_the_local_backend_reads_the_call():
    params = effective({"max_new_tokens": 256}, validate_parameters({"max_tokens": 64}), "transformers", "local")
    assert params == {"max_tokens": 64}
    assert parse_options(params).max_new_tokens == 64  # what the backend generates with: no second merge


@pytest.mark.parametrize("provider", ["openai", "transformers"])
def test_every_spelling_gives_one_cache_key(provider):
    endpoint = {"provider": provider, "model": "m", "parameters": {"max_new_tokens": 256, "temperature": 0.5}}
    if provider == "openai":
        endpoint["base_url"] = "http://127.0.0.1:9/v1"
    answerer = BatchAnswerer(None, ProjectConfig(name="p", endpoints={"e": endpoint}))  # type: ignore[arg-type]
    keys = {answerer.keys("e", ['"hi"'], None, [f'{{"{name}": 64}}'])[0] for name in SPELLINGS}
    assert len(keys) == 1
    spelled_out = answerer.keys("e", ['"hi"'], None, ['{"max_tokens": 64, "temperature": 0.5}'])[0]
    assert keys == {spelled_out}  # the endpoint's default, merged, is the same as written in the call
    assert answerer.keys("e", ['"hi"'], None, ['{"max_tokens": 65}'])[0] not in keys


def make(tmp_path: Path, endpoint: str, models: dict[str, str]) -> Path:
    (tmp_path / "models").mkdir(parents=True)
    (tmp_path / "project.yml").write_text(f"name: p\nendpoints:\n  e:\n{endpoint}"
                                          "    parameters: {max_new_tokens: 256}\n")
    for name, sql in models.items():
        (tmp_path / "models" / f"{name}.sql").write_text("{{ config(materialized='table') }}\n" + sql)
    return tmp_path


def calls(spelling: str, prompt: str = "one two three four five six") -> str:
    return (f"select ai_query('e', '{prompt}', modelParameters := {{'{spelling}': 3}}, failOnError := false) as r")


def test_openai_endpoint_sends_the_calls_max_tokens_and_spellings_share_the_cache(tmp_path):
    with stub(cut_at_max_tokens=True) as server:
        endpoint = f"    provider: openai\n    base_url: {server.url}\n    model: stub\n"
        project = make(tmp_path, endpoint, {name: calls(name) for name in SPELLINGS})
        done = cli(project, "run")
        requests = server.stats.requests
    assert done.returncode == 0, done.stdout + done.stderr
    assert requests == 1  # three spellings, one request, one cached answer
    for name in SPELLINGS:  # 3 words (the call's max_tokens), not 256
        assert query(project, f"select r.result, r.finishReason from {name}", "target/p.duckdb") == \
            [("reply: one two", "length")]


def test_an_unknown_option_is_refused_at_compile_time_with_did_you_mean(tmp_path):
    project = make(tmp_path, "    provider: transformers\n    model: smollm2-135m-instruct\n",
                   {"a": calls("max_token")})
    done = cli(project, "compile")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "models/a.sql" in done.stderr and "did you mean 'max_tokens'" in done.stderr
    assert "Traceback" not in done.stderr


LOCAL = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "xgrammar"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    if not LOCAL:
        pytest.skip("the local backend needs torch, transformers and xgrammar")
    path = Path(__file__).parent / "fixtures" / "local" / "tiny.py"
    spec = importlib.util.spec_from_file_location("sqlsynth_tiny_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def test_local_endpoint_runs_the_issue_example_through_the_cli(tmp_path, tiny):
    endpoint = f"    provider: transformers\n    model: {tiny}\n    device: cpu\n"
    project = make(tmp_path, endpoint, {name: calls(name) for name in SPELLINGS})
    done = cli(project, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(project / "target" / "p.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from sqlsynth.calls").fetchall() == [(1,)]  # one key for 3 spellings
        [(tokens, parameters)] = con.execute("select completion_tokens, parameters from sqlsynth.cache").fetchall()
    assert tokens == 3 and json.loads(parameters) == {"max_tokens": 3}  # the call's 3, not the endpoint's 256


def test_the_local_backend_does_not_merge_endpoint_defaults_a_second_time(tiny):
    from sqlsynth.config import EndpointConfig
    from sqlsynth.llm.local.backend import TransformersBackend
    from sqlsynth.llm.types import LLMRequest

    endpoint = EndpointConfig(provider="transformers", model=str(tiny), device="cpu", parameters={"max_new_tokens": 3})
    backend = TransformersBackend(endpoint, "e")
    hi = ({"role": "user", "content": "hi"},)
    # the engine hands the backend effective parameters: what the request carries is what it generates with
    [result] = backend.generate_many([LLMRequest(hi, {"max_tokens": 7})])
    assert result.completion_tokens == 7
    [bare] = backend.generate_many([LLMRequest(hi, {})])  # not the endpoint's 3 again: merged once, upstream
    assert bare.completion_tokens > 3
    con = duckdb.connect()
    cache = Cache(con)
    try:  # and the engine merges the endpoint's default into a call without one, once
        config = ProjectConfig(name="p", endpoints={"e": endpoint.model_dump(exclude_unset=True)})
        [outcome] = BatchAnswerer(cache, config).answer("e", ['"hi"'], None, [None])
        [(tokens,)] = con.execute("select completion_tokens from sqlsynth.cache").fetchall()
    finally:
        cache.close()
        con.close()
    assert outcome.error is None and tokens == 3


def test_an_endpoint_default_the_backend_does_not_know_is_refused_at_compile_time(tmp_path):
    project = make(tmp_path, "    provider: transformers\n    model: smollm2-135m-instruct\n",
                   {"a": "select ai_query('e', 'hi') as r"})
    (project / "project.yml").write_text((project / "project.yml").read_text().replace(
        "{max_new_tokens: 256}", "{max_new_tokens: 256, presence_penalty: 0.5}"))
    done = cli(project, "compile")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "project.yml" in done.stderr and "endpoint 'e' parameters" in done.stderr
    assert "repetition_penalty" in done.stderr and "Traceback" not in done.stderr


def test_settings_the_local_model_cannot_honour_are_refused_at_compile_time(tmp_path):
    project = make(tmp_path, "    provider: transformers\n    model: smollm2-135m-instruct\n",
                   {"a": "select ai_query('e', 'hi', modelParameters := {'n': 3}) as r"})
    done = cli(project, "compile")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "models/a.sql" in done.stderr and "identical answers" in done.stderr and "Traceback" not in done.stderr
