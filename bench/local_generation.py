"""Benchmark 5 of issue 3: the local model, batched vs one prompt at a time, and structured validity.

    python bench/local_generation.py [--prompts 64] [--max-new-tokens 32] [--structured 64]

1. Plain text, greedy, the same prompts and max_new_tokens both ways:
   - baseline: a transformers ``pipeline("text-generation")`` called one prompt at a time;
   - ours: ``TransformersBackend.generate_many`` (sorted, left-padded batches).
   Tokens/s counts generated tokens (up to and including the stop token) over wall time; the
   ratio ours / baseline is the figure (target >= 4x). Greedy answers should also agree.
2. Structured answers (the bank question-generation schema, temperature 0.99 as in the source):
   the share that is schema-valid JSON per pydantic (must be 100%).

The model is the bundled SmolLM2-135M-Instruct, converted once into the sqlsynth cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOPICS = ["direct deposit", "savings accounts", "overdraft fees", "mortgage rates", "credit card limits",
          "lost debit card", "wire transfers", "buying Apple stock", "retirement accounts", "student loans",
          "mobile banking app", "currency exchange", "account statements", "joint accounts",
          "car loans", "fraud alerts"]
STYLES = ["Ask one short question a bank customer might have about {t}.",
          "In one sentence, explain {t} to a new customer.",
          "Give one tip about {t}.",
          "What should I know about {t}? Answer briefly."]


def prompts(count: int) -> list[str]:
    return [STYLES[(i // len(TOPICS)) % len(STYLES)].format(t=TOPICS[i % len(TOPICS)]) for i in range(count)]


def baseline(model, tokenizer, texts: list[str], max_new_tokens: int) -> tuple[float, int, list[str]]:
    """A text-generation pipeline, one prompt per call (how a notebook usually does it)."""
    from transformers import pipeline

    from sqlsynth.llm.local import encode_chat

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device=model.device)
    stop = model.generation_config.eos_token_id
    tokens, answers = 0, []
    pipe([{"role": "user", "content": "warm up"}], max_new_tokens=2, do_sample=False)
    started = time.perf_counter()
    for text in texts:
        messages = [{"role": "user", "content": text}]
        out = pipe(messages, max_new_tokens=max_new_tokens, do_sample=False, return_tensors=True,
                   pad_token_id=tokenizer.pad_token_id)
        ids = out[0]["generated_token_ids"]
        ids = list(ids.tolist() if hasattr(ids, "tolist") else ids)[len(encode_chat(tokenizer, messages)):]
        end = ids.index(stop) + 1 if stop in ids else len(ids)
        tokens += end
        answers.append(tokenizer.decode(ids[:end], skip_special_tokens=True).strip())
    return time.perf_counter() - started, tokens, answers


def batched(backend, texts: list[str], max_new_tokens: int) -> tuple[float, int, list[str]]:
    from sqlsynth.llm.types import LLMRequest

    requests = [LLMRequest(messages=({"role": "user", "content": t},),
                           parameters={"max_tokens": max_new_tokens}) for t in texts]
    backend.generate_many(requests[:2])  # warm up
    started = time.perf_counter()
    results = backend.generate_many(requests)
    elapsed = time.perf_counter() - started
    return elapsed, sum(r.completion_tokens for r in results), [r.text for r in results]


def structured(backend, count: int, max_new_tokens: int) -> tuple[int, int, float, int]:
    from pydantic import BaseModel, ValidationError

    from sqlsynth.llm.types import LLMRequest

    class Questions(BaseModel):
        reasoning: str
        questions: list[str]

    schema = Questions.model_json_schema()
    requests = [LLMRequest(
        messages=({"role": "user", "content": f"Example question: 'How do I manage {TOPICS[i % len(TOPICS)]}?' "
                   "Write 3 new short, diverse questions inspired by it. Reply as JSON with your "
                   "reasoning and the list of questions."},),
        parameters={"temperature": 0.99, "max_tokens": max_new_tokens, "seed": i},
        response_schema=schema) for i in range(count)]
    started = time.perf_counter()
    results = backend.generate_many(requests)
    elapsed = time.perf_counter() - started
    valid = 0
    for result in results:
        try:
            Questions.model_validate_json(result.text or "")
            valid += 1
        except ValidationError:
            print("  invalid:", result.error or result.text[:200])
    return valid, len(results), elapsed, sum(r.completion_tokens for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--structured", type=int, default=64, help="structured requests (0: skip)")
    parser.add_argument("--structured-max-tokens", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    from sqlsynth.config import EndpointConfig
    from sqlsynth.llm.local import TransformersBackend, import_torch

    torch = import_torch()
    backend = TransformersBackend(EndpointConfig(provider="transformers", model="smollm2-135m-instruct",
                                                 batch_size=args.batch_size), "default")
    started = time.perf_counter()
    loaded = backend.loaded
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"device {loaded.device}, dtype {loaded.dtype}, load average {os.getloadavg()[0]:.1f}")
    print(f"model loaded in {time.perf_counter() - started:.1f} s")
    texts = prompts(args.prompts)

    ours_s, ours_tokens, ours_answers = batched(backend, texts, args.max_new_tokens)
    ours_rate = ours_tokens / ours_s
    print(f"batched generate_many: {ours_tokens} tokens in {ours_s:.1f} s = {ours_rate:.1f} tokens/s")
    if not args.skip_baseline:
        base_s, base_tokens, base_answers = baseline(loaded.model, loaded.tokenizer, texts, args.max_new_tokens)
        base_rate = base_tokens / base_s
        same = sum(a == b for a, b in zip(ours_answers, base_answers, strict=True))
        print(f"pipeline, one at a time: {base_tokens} tokens in {base_s:.1f} s = {base_rate:.1f} tokens/s")
        print(f"ratio batched / one-at-a-time: {ours_rate / base_rate:.1f}x  (target >= 4x); "
              f"identical greedy answers: {same}/{len(texts)}")
    if args.structured:
        valid, total, seconds, tokens = structured(backend, args.structured, args.structured_max_tokens)
        print(f"structured: {valid}/{total} schema-valid ({100 * valid / total:.0f}%, must be 100%), "
              f"{tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
