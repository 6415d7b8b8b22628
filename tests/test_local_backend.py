"""The in-process transformers backend (the sqlsynth/llm/local/ package).

Fast tests run a tiny random Llama built offline (tests/fixtures/local/tiny.py); tests marked
``model`` load the real bundled SmolLM2-135M-Instruct (a couple of minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# Before anything imports torch: spinning OpenMP threads make a shared 2-core box ~8x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if not all(importlib.util.find_spec(m) for m in ("torch", "transformers", "xgrammar")):
    pytest.skip("the local backend needs torch, transformers and xgrammar", allow_module_level=True)

from sqlsynth.config import EndpointConfig  # noqa: E402
from sqlsynth.errors import SqlsynthError  # noqa: E402
from sqlsynth.llm import local  # noqa: E402
from sqlsynth.llm.bundled import LocalModelError  # noqa: E402
from sqlsynth.llm.local import (  # noqa: E402
    InvalidParametersError,
    TransformersBackend,
    batching,
    bounded_schema,
    generation,
    loading,
    memory,
    minimal_instance,
    pack_bitmask,
    parse_options,
    prefix,  # noqa: E402
)
from sqlsynth.llm.local import backend as backend_module  # noqa: E402
from sqlsynth.llm.types import LLMRequest  # noqa: E402

TINY = Path(__file__).parent / "fixtures" / "local" / "tiny.py"
QUESTIONS = {"type": "object",
             "properties": {"reasoning": {"type": "string"},
                            "questions": {"type": "array", "items": {"type": "string"}}},
             "required": ["reasoning", "questions"]}
CONTENT = {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]}


def _tiny_module():
    spec = importlib.util.spec_from_file_location("sqlsynth_tiny_fixture", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return _tiny_module().build_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def backend(model_dir, **endpoint) -> TransformersBackend:
    config = EndpointConfig(provider="transformers", model=str(model_dir), device="cpu", **endpoint)
    return TransformersBackend(config, "local")


def ask(text: str, schema=None, **parameters) -> LLMRequest:
    return LLMRequest(messages=({"role": "user", "content": text},), parameters=parameters,
                      response_schema=schema)


def assert_valid(text: str, schema: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(text), schema)


# ------------------------------------------------------------------ cheap import, options


def test_import_is_cheap():
    code = ("import sys, sqlsynth.llm.local, sqlsynth.llm.bundled; "
            "heavy = [m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_options_aliases_and_defaults():
    assert parse_options({"max_tokens": 7}).max_new_tokens == 7
    assert parse_options({"max_new_tokens": 7}).max_new_tokens == 7
    assert parse_options({"n": 2, "temperature": 0.5}).num_return_sequences == 2
    options = parse_options({})
    assert options.max_new_tokens == local.DEFAULT_MAX_NEW_TOKENS and not options.sampling
    assert parse_options({"temperature": 0.7}).sampling
    assert not parse_options({"temperature": 0}).sampling
    assert not parse_options({"temperature": 0.7, "do_sample": False}).sampling
    assert parse_options({"do_sample": True}).sampling
    assert parse_options({"temperature": None, "max_tokens": 3}).max_new_tokens == 3  # NULLs ignored


@pytest.mark.parametrize("parameters, words", [
    ({"temprature": 0.5}, ["unknown", "temprature", "did you mean 'temperature'"]),
    ({"temperature": "hot"}, ["temperature", "hot"]),
    ({"max_tokens": 0}, ["max_tokens", "greater than or equal to 1"]),
    ({"max_tokens": 1.5}, ["max_tokens"]),
    ({"top_p": 1.5}, ["top_p"]),
    ({"num_beams": "many"}, ["num_beams"]),
    ({"max_tokens": 5, "max_new_tokens": 6}, ["different values"]),
    ({"num_return_sequences": 3}, ["identical", "temperature"]),
    ({"num_return_sequences": 3, "num_beams": 2}, ["num_beams"]),
    ({"seed": "abc"}, ["seed"]),
    ({"presence_penalty": 0.5}, ["presence_penalty", "repetition_penalty"]),
    ({"stop": 5}, ["stop"]),
])
def test_bad_options_are_clear_errors(parameters, words):
    with pytest.raises(InvalidParametersError) as info:
        parse_options(parameters)
    assert isinstance(info.value, SqlsynthError)
    for word in words:
        assert word in str(info.value)
    assert info.value.hint


def test_cache_only_and_stop_parameters_are_accepted():
    assert parse_options({"sample_id": 3}).sample_id == 3
    assert parse_options({"stop": "\n"}).stop == ("\n",)
    assert parse_options({"stop": ["a", "b"]}).stop == ("a", "b")
    assert parse_options({"sample_id": 1}).group_key() == parse_options({"sample_id": 2}).group_key()


def test_bad_endpoint_parameters_fail_at_construction(tiny_dir):
    with pytest.raises(InvalidParametersError, match="endpoint 'local' parameters"):
        backend(tiny_dir, parameters={"temperature": "warm"})


def test_bad_request_parameters_fail_before_generating(tiny_dir, monkeypatch):
    monkeypatch.setattr(backend_module, "run_batch", lambda *a: pytest.fail("generated despite a bad parameter"))
    with pytest.raises(InvalidParametersError, match=r"request 1.*beams"):
        backend(tiny_dir).generate_many([ask("a"), ask("b", beams=2)])


# ------------------------------------------------------------------ generation


def test_generate_many_answers_in_order_with_token_counts(tiny_dir):
    b = backend(tiny_dir)
    prompts = ["hi", "How do I set up a direct deposit?", "a much longer prompt " * 5, "x"]
    results = b.generate_many([ask(p, max_tokens=6) for p in prompts])
    assert len(results) == 4
    for prompt, result in zip(prompts, results, strict=True):
        assert result.error is None and isinstance(result.text, str)
        assert result.prompt_tokens == len(local.encode_chat(b.loaded.tokenizer,
                                                             [{"role": "user", "content": prompt}]))
        assert 1 <= result.completion_tokens <= 6
    assert b.generate_many([]) == []


def test_batched_equals_one_by_one(tiny_dir):
    b = backend(tiny_dir)
    requests = [ask(p, max_tokens=8) for p in ["hi", "a longer prompt about savings accounts", "q"]]
    batched = [r.text for r in b.generate_many(requests)]
    alone = [b.generate_many([r])[0].text for r in requests]
    assert batched == alone


def test_seed_is_reproducible_inside_any_batch(tiny_dir):
    b = backend(tiny_dir, batch_size=8)
    target = ask("tell me something", temperature=1.0, seed=42, max_tokens=12)
    alone = b.generate_many([target])[0].text
    others = [ask("other prompt " * k, temperature=1.0, seed=k, max_tokens=12) for k in range(1, 5)]
    in_batch = b.generate_many(others[:2] + [target] + others[2:])
    assert in_batch[2].text == alone
    assert b.generate_many([target])[0].text == alone
    other_seed = b.generate_many([ask("tell me something", temperature=1.0, seed=43, max_tokens=12)])
    assert other_seed[0].text != alone


def test_sampling_settings_run(tiny_dir):
    b = backend(tiny_dir)
    settings = [dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.5),
                dict(do_sample=True, top_k=1), dict(repetition_penalty=1.5),
                dict(num_beams=3), dict(num_beams=2, temperature=0.8)]
    results = b.generate_many([ask("hello", max_tokens=5, seed=3, **s) for s in settings])
    assert all(r.error is None and r.text is not None for r in results)
    greedy = b.generate_many([ask("hello", max_tokens=5)])[0].text
    assert results[2].text == greedy  # top_k=1 sampling is greedy


def test_stop_strings_end_plain_answers_before_them(tiny_dir):
    b = backend(tiny_dir)
    full = b.generate_many([ask("hi", max_tokens=16)])[0].text
    stop = full[5:7]
    cut = b.generate_many([ask("hi", max_tokens=16, stop=[stop, "never-there"])])[0]
    assert cut.text == full[: full.find(stop)].strip()
    assert cut.completion_tokens <= 16
    structured = b.generate_many([ask("hi", CONTENT, max_tokens=8, stop='"')])[0]  # ignored for JSON
    assert_valid(structured.text, CONTENT)


SYSTEM = ("You are the bank's assistant. Rules: be polite; never give investment advice; keep answers "
          "short; reason step by step, then write only the final answer.")


def with_system(text: str, schema=None, **parameters) -> LLMRequest:
    return LLMRequest(messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": text}),
                      parameters=parameters, response_schema=schema)


def sixteen_prompts() -> list[str]:
    return [f"Question {i}: " + "how do I open a savings account " * (i % 5) for i in range(16)]


def test_shared_prefix_is_computed_once_and_answers_do_not_change(tiny_dir, monkeypatch):
    b = backend(tiny_dir, batch_size=6)  # three batches: the second and third reuse the first's prefix
    plain = [with_system(q, max_tokens=6) for q in sixteen_prompts()]
    structured = [with_system(q, CONTENT, max_tokens=10) for q in sixteen_prompts()[:5]]
    penalised = [with_system(q, max_tokens=6, repetition_penalty=1.3) for q in sixteen_prompts()[:5]]
    before = prefix.STATS.as_dict()
    computed = []
    real = prefix._compute_layers
    monkeypatch.setattr(prefix, "_compute_layers", lambda m, p: computed.append(len(p)) or real(m, p))
    reused = b.generate_many(plain + structured + penalised)
    after = prefix.STATS.as_dict()
    assert len(computed) == 1 and computed[0] >= prefix.MIN_SHARED_TOKENS
    assert after["reused_tokens"] - before["reused_tokens"] >= 26 * computed[0]
    monkeypatch.setenv("SQLSYNTH_PREFIX_REUSE", "0")
    without = b.generate_many(plain + structured + penalised)
    assert prefix.STATS.as_dict()["reused_tokens"] == after["reused_tokens"]
    assert [r.text for r in reused] == [r.text for r in without]
    assert [r.prompt_tokens for r in reused] == [r.prompt_tokens for r in without]


def test_shared_prefix_length_leaves_every_row_a_token():
    base = list(range(40))
    assert prefix.shared_prefix_length([base + [1, 2], base + [3]]) == 40
    assert prefix.shared_prefix_length([base, base]) == 39  # identical prompts: the last token is own
    assert prefix.shared_prefix_length([base, [99] + base]) == 0
    assert prefix.shared_prefix_length([base[:10] + [1], base[:10] + [2]]) == 0  # too short to pay off


def test_finish_reason_says_length_or_stop(tiny_dir):
    b = backend(tiny_dir)  # the random tiny model rambles: it never ends on its own within 16 tokens
    full = b.generate_many([ask("hi", max_tokens=16)])[0]
    assert full.finish_reason == "length" and full.completion_tokens == 16
    stopped = b.generate_many([ask("hi", max_tokens=16, stop=[full.text[5:7]])])[0]
    assert stopped.finish_reason == "stop"
    short_json = b.generate_many([ask("hi", CONTENT, max_tokens=8)])[0]
    assert short_json.finish_reason == "length"  # closed early by the grammar's closing phase
    too_long = backend(tiny_dir, context_window=40).generate_many([ask("word " * 60, max_tokens=3)])[0]
    assert too_long.finish_reason == "error"


def test_num_return_sequences_come_back_as_a_json_array(tiny_dir):
    b = backend(tiny_dir)
    first = b.generate_many([ask("hi", temperature=1.0, seed=7, max_tokens=6)])[0]
    three = b.generate_many([ask("hi", temperature=1.0, seed=7, max_tokens=6, n=3)])[0]
    answers = json.loads(three.text)
    assert len(answers) == 3 and answers[0] == first.text
    assert len(set(answers)) > 1
    assert three.prompt_tokens == first.prompt_tokens
    beams = b.generate_many([ask("hi", num_beams=3, num_return_sequences=2, max_tokens=4)])[0]
    assert len(json.loads(beams.text)) == 2


def test_batch_size_and_memory_cut_batches(tiny_dir, monkeypatch):
    calls = []
    real = generation.generate_batch

    def spy(loaded, jobs):
        calls.append(len(jobs))
        return real(loaded, jobs)

    monkeypatch.setattr(generation, "generate_batch", spy)
    requests = [ask(f"prompt {i}", max_tokens=3) for i in range(7)]
    backend(tiny_dir, batch_size=3).generate_many(requests)
    assert calls == [3, 2, 2]  # evened out: a last batch of one would cost as many decode steps
    calls.clear()
    monkeypatch.setattr(batching, "memory_budget", lambda loaded: 1)  # nothing fits: one at a time
    backend(tiny_dir).generate_many(requests[:3])
    assert calls == [1, 1, 1]


def test_cpu_budget_is_fixed_not_a_share_of_free_ram(monkeypatch):
    monkeypatch.delenv(memory.BATCH_MB_ENV, raising=False)
    monkeypatch.setattr(memory, "_free_memory", lambda device: 1 << 40)  # a machine with 1 TB free
    assert memory.batch_budget("cpu") == memory.CPU_BATCH_BYTES
    monkeypatch.setenv(memory.BATCH_MB_ENV, "64")
    assert memory.batch_budget("cpu") == 64 << 20
    monkeypatch.setattr(memory, "_free_memory", lambda device: 10 << 30)
    assert memory.batch_budget("cuda:0") == int(0.7 * (10 << 30))


def test_batch_bytes_match_the_measured_bank_batches():
    """SmolLM2-135M fp32; the process grew by 437 MB (22 question rows) and 623 MB (52 answer rows)."""
    from types import SimpleNamespace

    import torch

    config = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                             hidden_size=576, intermediate_size=1536)
    shape = memory.MemoryShape.of(config, torch.float32)
    assert shape.kv_bytes_per_token == 46080
    questions = shape.batch_bytes(rows=22, shared=44, own=150, steps=96 + 52)
    answers = shape.batch_bytes(rows=52, shared=364, own=61, steps=48 + 16)
    assert 437 <= questions / 2**20 <= 437 * 1.15
    assert 623 * 0.95 <= answers / 2**20 <= 623 * 1.15
    assert shape.batch_bytes(64, 0, 150, 148) > 2 * shape.batch_bytes(32, 0, 150, 148) * 0.99


def test_batches_are_evened_out_within_the_budget(tiny_dir, monkeypatch):
    b = backend(tiny_dir)
    loaded = b.loaded
    jobs = [b._job(loaded, i, ask(f"prompt number {i}", max_tokens=4), parse_options({"max_tokens": 4}))
            for i in range(10)]
    one = batching.batch_cost(jobs[:1], loaded)
    four = batching.batch_cost(jobs[:4], loaded)
    monkeypatch.setattr(batching, "memory_budget", lambda loaded: four)  # four fit, five do not
    sizes = [len(batch) for batch in batching.cut(jobs, 64, loaded)]
    assert sizes == [4, 3, 3] and one < four
    assert [len(batch) for batch in batching.cut(jobs, 5, loaded)] == [4, 3, 3]
    monkeypatch.setattr(batching, "memory_budget", lambda loaded: 1 << 40)
    assert [len(batch) for batch in batching.cut(jobs, 64, loaded)] == [10]


def test_other_loaded_models_come_off_the_cpu_budget(tiny_dir, monkeypatch):
    from dataclasses import replace

    loaded = backend(tiny_dir).loaded
    monkeypatch.delenv(memory.BATCH_MB_ENV, raising=False)
    monkeypatch.setattr(loading, "loaded_models", lambda: [loaded])
    monkeypatch.setattr(batching, "loaded_models", lambda: [loaded])
    assert batching.memory_budget(loaded) == memory.CPU_BATCH_BYTES
    student = replace(loaded, weight_bytes=50 << 20)
    monkeypatch.setattr(batching, "loaded_models", lambda: [loaded, student])
    assert batching.memory_budget(loaded) == memory.CPU_BATCH_BYTES - (50 << 20)
    monkeypatch.setattr(batching, "loaded_models", lambda: [loaded, replace(loaded, weight_bytes=1 << 30)])
    assert batching.memory_budget(loaded) == memory.CPU_MIN_BATCH_BYTES


def test_requests_are_grouped_by_settings_and_sorted_by_length(tiny_dir, monkeypatch):
    seen = []
    real = generation.generate_batch

    def spy(loaded, jobs):
        seen.append([(j.options.max_new_tokens, len(j.prompt_ids)) for j in jobs])
        return real(loaded, jobs)

    monkeypatch.setattr(generation, "generate_batch", spy)
    requests = [ask("long prompt " * 6, max_tokens=3), ask("a", max_tokens=4), ask("b", max_tokens=3)]
    results = backend(tiny_dir).generate_many(requests)
    assert len(seen) == 2 and [len(batch) for batch in seen] == [2, 1]
    assert seen[0][0][1] < seen[0][1][1]  # shortest first
    assert all(r.error is None for r in results)


def test_prompt_longer_than_context_window_is_a_per_request_error(tiny_dir):
    results = backend(tiny_dir, context_window=40).generate_many(
        [ask("word " * 60, max_tokens=3), ask("short", max_tokens=3)])
    assert results[0].text is None and "context window is 40" in results[0].error
    assert results[1].error is None


def test_chat_template_failure_is_a_per_request_error(tiny_dir, monkeypatch):
    real = loading.encode_chat

    def picky(tokenizer, messages):
        if messages[0]["role"] == "assistant":
            raise ValueError("conversation roles must alternate user/assistant")
        return real(tokenizer, messages)

    monkeypatch.setattr(backend_module, "encode_chat", picky)
    bad = LLMRequest(messages=({"role": "assistant", "content": "x"},), parameters={"max_tokens": 2})
    results = backend(tiny_dir).generate_many([bad, ask("fine", max_tokens=2)])
    assert results[0].text is None and "must alternate" in results[0].error
    assert results[1].error is None


def test_endpoint_defaults_are_overridden_per_request(tiny_dir):
    """The engine merges the endpoint's defaults into each request once (params.effective); the backend
    generates with what the request carries."""
    import duckdb

    from sqlsynth.config import ProjectConfig
    from sqlsynth.llm.batch import BatchAnswerer
    from sqlsynth.llm.cache import Cache

    endpoint = {"provider": "transformers", "model": str(tiny_dir), "device": "cpu",
                "parameters": {"max_tokens": 3, "temperature": 1.0, "seed": 5}}
    con = duckdb.connect()
    cache = Cache(con)
    try:
        answerer = BatchAnswerer(cache, ProjectConfig(name="p", endpoints={"local": endpoint}))
        answerer.answer("local", ['"hi"', '"hi"'], None, [None, '{"max_new_tokens": 9}'])
        tokens = con.execute("select completion_tokens from sqlsynth.cache order by 1").fetchall()
    finally:
        cache.close()
        con.close()
    assert tokens[0][0] <= 3 < tokens[1][0]


def test_model_is_loaded_once_per_process(tiny_dir, monkeypatch):
    loading._MODELS.clear()
    loads = []
    real = loading._load
    monkeypatch.setattr(loading, "_load", lambda d, dev: loads.append(d) or real(d, dev))
    threads = [threading.Thread(target=lambda: backend(tiny_dir).loaded) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend(tiny_dir).loaded is backend(tiny_dir).loaded
    assert len(loads) == 1


def test_concurrent_generate_many_calls_are_safe(tiny_dir):
    b = backend(tiny_dir)
    expected = b.generate_many([ask("hi", max_tokens=5)])[0].text
    out = []
    threads = [threading.Thread(target=lambda: out.append(b.generate_many([ask("hi", max_tokens=5)])[0].text))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [expected] * 3


def test_identity_names_provider_model_and_revision(tiny_dir, tmp_path):
    ident = backend(tiny_dir).identity()
    assert ident["provider"] == "transformers" and ident["model"] == str(tiny_dir)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for f in tiny_dir.iterdir():
        (copy_dir / f.name).write_bytes(f.read_bytes())
    before = backend(copy_dir).identity()["revision"]
    (copy_dir / "model.safetensors").write_bytes((copy_dir / "model.safetensors").read_bytes() + b" ")
    assert backend(copy_dir).identity()["revision"] != before  # retrained checkpoint: new cache key
    bundled = TransformersBackend(EndpointConfig(provider="transformers", model="smollm2-135m-instruct"), "d")
    assert bundled.identity()["model"] == "smollm2-135m-instruct"


def test_unknown_device_is_a_clear_error(tiny_dir):
    with pytest.raises(LocalModelError, match="cannot load the model") as info:
        backend_on = TransformersBackend(
            EndpointConfig(provider="transformers", model=str(tiny_dir), device="nodevice"), "x")
        backend_on.generate_many([ask("hi")])
    assert info.value.hint


def test_missing_model_is_a_clear_error(tmp_path):
    b = TransformersBackend(EndpointConfig(provider="transformers", model=str(tmp_path / "nope")), "x")
    with pytest.raises(LocalModelError, match="not found"):
        b.generate_many([ask("hi")])


def test_model_without_chat_template_gets_chatml(tmp_path):
    model_dir = _tiny_module().build_tiny_model_dir(tmp_path / "base", chat_template=False)
    result = backend(model_dir).generate_many([ask("hi", max_tokens=3)])[0]
    assert result.error is None
    assert "<|im_start|>assistant" in backend(model_dir).loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)


def test_peft_adapter_dir_loads_merged(tiny_dir, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_dir)
    result = backend(adapter).generate_many([ask("hi", max_tokens=3)])[0]
    assert result.error is None and result.completion_tokens >= 1


# ------------------------------------------------------------------ structured output


def test_structured_output_is_always_valid_even_from_a_random_model(tiny_dir):
    b = backend(tiny_dir, batch_size=16)
    requests = [ask(f"questions about topic {i}", QUESTIONS, temperature=1.0, seed=i, max_tokens=m)
                for i in range(12) for m in (1, 8, 40)]
    results = b.generate_many(requests)
    for result in results:
        assert result.error is None, result.error
        assert_valid(result.text, QUESTIONS)


def test_structured_output_with_nested_pydantic_schema(tiny_dir):
    from pydantic import BaseModel

    class Step(BaseModel):
        title: str
        done: bool
        score: int | None

    class Plan(BaseModel):
        steps: list[Step]
        kind: str
        tags: list[str]

    schema = Plan.model_json_schema()
    results = backend(tiny_dir).generate_many(
        [ask("plan", schema, temperature=1.0, seed=s, max_tokens=30) for s in range(6)])
    for result in results:
        assert result.error is None, result.error
        Plan.model_validate_json(result.text)


def test_structured_output_with_beams_and_many_sequences(tiny_dir):
    b = backend(tiny_dir)
    beams = b.generate_many([ask("x", CONTENT, num_beams=3, n=2, max_tokens=10)])[0]
    sampled = b.generate_many([ask("x", CONTENT, temperature=1.0, seed=1, n=3, max_tokens=10)])[0]
    for result, count in ((beams, 2), (sampled, 3)):
        answers = json.loads(result.text)
        assert len(answers) == count
        for answer in answers:
            assert_valid(json.dumps(answer), CONTENT)


def test_structured_and_plain_requests_mix(tiny_dir):
    results = backend(tiny_dir).generate_many(
        [ask("a", CONTENT, max_tokens=6), ask("b", max_tokens=4), ask("c", QUESTIONS, max_tokens=6)])
    assert_valid(results[0].text, CONTENT)
    assert_valid(results[2].text, QUESTIONS)
    assert results[1].error is None


def test_compact_json_and_schema_key_order(tiny_dir):
    text = backend(tiny_dir).generate_many([ask("a", QUESTIONS, temperature=1.0, seed=2, max_tokens=30)])[0].text
    assert text.startswith('{"reasoning": "')  # declared order: reasoning first, as the prompt asks
    assert "\n" not in text


def test_bad_schema_is_a_clear_error(tiny_dir):
    with pytest.raises(LocalModelError, match="cannot build a grammar"):
        backend(tiny_dir).generate_many([ask("a", {"type": "object", "properties": {"a": {"$ref": "#/nope"}},
                                                   "required": ["a"]})])


def test_bounded_schema_adds_bounds_only_where_absent():
    schema = {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string", "maxLength": 5},
        "c": {"type": "array", "items": {"type": "string", "enum": ["x", "yy"]}},
        "d": {"type": "array", "maxItems": 2, "items": {"type": "integer"}},
        "e": {"type": ["string", "null"], "minLength": 3000}}}
    bounded = bounded_schema(schema, max_new_tokens=100)
    props = bounded["properties"]
    assert props["a"]["maxLength"] == 400 and props["b"]["maxLength"] == 5
    assert props["c"]["maxItems"] == local.DEFAULT_MAX_ITEMS and "maxLength" not in props["c"]["items"]
    assert props["d"]["maxItems"] == 2
    assert props["e"]["maxLength"] == 3000
    assert "maxLength" not in schema["properties"]["a"]  # the caller's schema is untouched


def test_minimal_instance():
    assert minimal_instance(QUESTIONS) == {"reasoning": "", "questions": []}
    schema = {"type": "object", "required": ["n", "l", "o"], "$defs": {"D": {"type": "boolean"}},
              "properties": {"n": {"type": "integer"}, "l": {"type": "array", "minItems": 2,
                                                                "items": {"$ref": "#/$defs/D"}},
                             "o": {"anyOf": [{"type": "string", "minLength": 9}, {"type": "null"}]}}}
    assert minimal_instance(schema) == {"n": 0, "l": [False, False], "o": None}


def test_pack_bitmask_matches_xgrammar():
    import torch
    import xgrammar as xgr

    allowed = torch.zeros(100, dtype=torch.bool)
    allowed[[0, 31, 32, 63, 99]] = True
    logits = torch.zeros(1, 100)
    xgr.apply_token_bitmask_inplace(logits, pack_bitmask(allowed), vocab_size=100)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 31, 32, 63, 99]


# ------------------------------------------------------------------ the real bundled model


@pytest.fixture(scope="module")
def smol():
    return TransformersBackend(EndpointConfig(provider="transformers", model="smollm2-135m-instruct"),
                               "default")


@pytest.mark.model
def test_real_model_says_hi(smol):
    result = smol.generate_many([ask("Say hi", max_tokens=16)])[0]
    assert result.error is None and result.text.strip()
    whole = smol.generate_many([ask("Say hi in three words.", max_tokens=64)])[0]
    assert whole.finish_reason == "stop" and whole.completion_tokens < 64
    cut = smol.generate_many([ask("Say hi in three words.", max_tokens=2)])[0]
    assert cut.finish_reason == "length" and cut.completion_tokens == 2
    assert result.prompt_tokens > 5 and 1 <= result.completion_tokens <= 16


@pytest.mark.model
def test_real_model_structured_output_is_valid(smol):
    from pydantic import BaseModel

    class Questions(BaseModel):
        reasoning: str
        questions: list[str]

    topics = ["direct deposit", "savings accounts", "buying Apple stock", "lost debit card"]
    requests = [ask(f"Write 3 short questions a bank customer could ask about {t}. Reply in JSON with "
                    "'reasoning' and 'questions'.", Questions.model_json_schema(),
                    temperature=0.99, seed=i, max_tokens=48) for i, t in enumerate(topics)]
    requests.append(ask("Answer briefly: what is a checking account?", CONTENT, temperature=0.7,
                        seed=1, max_tokens=12))  # max_tokens hit mid-answer: still closed JSON
    results = smol.generate_many(requests)
    for result in results[:-1]:
        assert result.error is None, result.error
        Questions.model_validate_json(result.text)
    assert_valid(results[-1].text, CONTENT)


@pytest.mark.model
def test_real_model_seed_reproducible_in_batch(smol):
    target = ask("Name a fruit.", temperature=1.0, seed=123, max_tokens=10)
    alone = smol.generate_many([target])[0].text
    batch = smol.generate_many([ask("Tell me a joke about banks.", temperature=1.0, seed=9, max_tokens=10),
                                target, ask("Hi", temperature=1.0, seed=2, max_tokens=10)])
    assert batch[1].text == alone


def bank_system_message() -> str:
    """About the size and shape of the bank pipeline's answer instructions (~370 tokens)."""
    import csv

    rules_csv = Path(__file__).parents[1] / "seeds" / "bank_rules.csv"
    with rules_csv.open(encoding="utf-8") as f:
        rules = "\n".join(f"{row['rule_id']}: {row['rule']}" for row in csv.DictReader(f))
    return (f"You are the customer-service assistant of Example Bank. Rules:\n{rules}\nBefore you answer: "
            "1. analyse what the customer needs; 2. decide if it is in scope; 3. draft an answer that "
            "follows each rule; 4. check it is safe and compliant; 5. revise it for tone; 6. output "
            'only the final answer, in "content".')


@pytest.mark.model
def test_real_model_prefix_reuse_keeps_greedy_answers(smol, monkeypatch):
    system = bank_system_message()
    questions = ["How do I set up a direct deposit?", "Should I buy Apple stock?", "I lost my card!",
                 "What is a savings account?", "Can you tell me my neighbour's balance?",
                 "How long does a transfer take?", "Will interest rates go up?", "How do I change my PIN?",
                 "Is crypto a good investment?", "How do I order a new debit card?", "What is an overdraft?",
                 "Can I get a refund for a card payment?", "Do I pay tax on savings interest?",
                 "How do I freeze my card?", "What are your opening hours?", "How do I close my account?"]
    requests = [LLMRequest(messages=({"role": "system", "content": system}, {"role": "user", "content": q}),
                           parameters={"max_tokens": 24}, response_schema=CONTENT if i % 2 else None)
                for i, q in enumerate(questions)]
    before = prefix.STATS.as_dict()["reused_tokens"]
    reused = smol.generate_many(requests)
    assert prefix.STATS.as_dict()["reused_tokens"] - before >= 16 * 300  # the system message, once
    monkeypatch.setenv("SQLSYNTH_PREFIX_REUSE", "0")
    without = smol.generate_many(requests)
    assert [r.text for r in reused] == [r.text for r in without]
    assert all(r.error is None for r in reused)


def test_idle_weights_leave_rss_and_come_back_the_same(tiny_dir):
    b = backend(tiny_dir)
    requests = [ask(f"hello {i}", max_tokens=4) for i in range(3)]
    first = [r.text for r in b.generate_many(requests)]
    mapped = memory._clean_weight_mappings(os.path.realpath(tiny_dir))
    assert memory.release_weight_pages(str(tiny_dir)) == sum(end - start for start, end in mapped)
    assert [r.text for r in b.generate_many(requests)] == first  # pages come back from the file


def test_only_mappings_without_written_pages_are_dropped(tmp_path):
    import mmap

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    with weights.open("rb") as f:
        view = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        assert sum(view[i] for i in range(0, len(view), 4096)) == 0  # touch every page: resident
        mapped = memory._clean_weight_mappings(os.path.realpath(tmp_path))
        assert [end - start for start, end in mapped] == [len(view)]
        assert memory.release_weight_pages(str(tmp_path)) == len(view)
        assert view[1] == 1 and view[4097] == 1  # read back from the file
        view[0] = 7  # a private write: this mapping must never be dropped now
        assert memory._clean_weight_mappings(os.path.realpath(tmp_path)) == []
        assert memory.release_weight_pages(str(tmp_path)) == 0 and view[0] == 7
    finally:
        view.close()
