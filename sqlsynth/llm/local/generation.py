"""One batch through ``generate()``: left padding, logits processors, decoding the answers."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from ..types import LLMResult
from .batching import Job, is_beam_sampling
from .loading import LoadedModel
from .memory import release_freed_memory
from .prefix import STATS, shared_prefix_length
from .sampling import RepetitionPenalty, RowSampler


def run_batch(loaded: LoadedModel, jobs: list[Job]) -> None:
    """Generate for jobs sharing settings; fills ``job.result`` (an error result if generate fails)."""
    started = time.perf_counter()
    try:
        with loaded.lock:
            try:
                decoded = generate_batch(loaded, jobs)
            finally:
                release_freed_memory()  # before the next batch: its KV blocks have other sizes
    except Exception as exc:  # OOM, device errors: every request of the batch gets the error
        for job in jobs:
            job.result = LLMResult(text=None, prompt_tokens=len(job.prompt_ids), finish_reason="error",
                                   error=f"local generation failed: {type(exc).__name__}: {exc}")
        return
    latency = time.perf_counter() - started
    for job, answer in zip(jobs, decoded, strict=True):
        job.result = _result(job, answer, latency)


@dataclass
class Decoded:
    """One job's answers: its n texts (None: incomplete JSON), tokens used, and why it ended."""

    texts: list[str | None]
    completion_tokens: int
    finish_reason: str  # "length" when any of the n answers was cut by max_tokens, else "stop"


def _result(job: Job, decoded: Decoded, latency: float) -> LLMResult:
    answers, completion = decoded.texts, decoded.completion_tokens
    if any(a is None for a in answers):
        return LLMResult(text=None, prompt_tokens=len(job.prompt_ids), completion_tokens=completion,
                         latency_s=latency, finish_reason="error", error=(
                             "structured answer is not complete JSON within "
                             f"max_tokens={job.options.max_new_tokens}: raise max_tokens"))
    if len(answers) == 1:
        text = answers[0]
    elif job.schema is not None:
        text = json.dumps([json.loads(a) for a in answers], ensure_ascii=False)
    else:
        text = json.dumps(answers, ensure_ascii=False)
    return LLMResult(text=text, prompt_tokens=len(job.prompt_ids), completion_tokens=completion,
                     latency_s=latency, finish_reason=decoded.finish_reason)


def generate_batch(loaded: LoadedModel, jobs: list[Job]) -> list[Decoded]:
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    options = jobs[0].options
    n = options.num_return_sequences
    expand = n if options.num_beams == 1 else 1  # beams: generate() expands itself
    row_jobs = [job for job in jobs for _ in range(expand)]
    reusable = options.num_beams == 1 and len(row_jobs) > 1  # one row alone has nothing to share
    shared = shared_prefix_length([j.prompt_ids for j in row_jobs]) if reusable else 0
    cache = (loaded.prefixes.batch_cache(loaded.model, row_jobs[0].prompt_ids[:shared], len(row_jobs))
             if shared else None)
    shared = shared if cache is not None else 0
    input_ids, attention_mask, pad_spans = _pad(loaded, row_jobs, shared)
    prompt_len = input_ids.shape[1]
    max_new = max(job.max_new_tokens for job in jobs)
    rows_per_input = options.num_beams  # rows generate() sees per input row
    first_token = _FirstToken()
    processors = LogitsProcessorList([first_token])
    if options.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(options.repetition_penalty, pad_spans, rows_per_input))
    grammar_proc = None
    if jobs[0].schema is not None:
        grammar_proc = loaded.grammar().processor(jobs[0].schema, max_new, prompt_len,
                                                  n_rows=len(row_jobs) * rows_per_input)
        processors.append(grammar_proc)
        max_new = grammar_proc.hard_limit
    beam_sampling = is_beam_sampling(options)
    if options.sampling and not beam_sampling:
        processors.append(RowSampler(options, _row_seeds(jobs, expand)))
    if beam_sampling:
        torch.manual_seed(_seed(jobs[0]) % (1 << 63))
    sampling = ({"temperature": options.temperature or 1.0, "top_p": options.top_p,
                 "top_k": options.top_k or None} if beam_sampling else {})
    stop_strings = list(options.stop) if options.stop and grammar_proc is None else None
    config = GenerationConfig(
        max_new_tokens=max_new, do_sample=beam_sampling, num_beams=options.num_beams,
        num_return_sequences=n if options.num_beams > 1 else 1, **sampling, stop_strings=stop_strings,
        pad_token_id=loaded.tokenizer.pad_token_id, eos_token_id=loaded.stop_ids,
        bos_token_id=loaded.model.generation_config.bos_token_id)
    started = time.perf_counter()
    with torch.inference_mode():
        output = loaded.model.generate(input_ids=input_ids.to(loaded.device),
                                       attention_mask=attention_mask.to(loaded.device),
                                       past_key_values=cache,
                                       generation_config=config, logits_processor=processors,
                                       tokenizer=loaded.tokenizer if stop_strings else None)
    _record(started, first_token.at, row_jobs, shared)
    close_from = grammar_proc.close_from if grammar_proc is not None else None
    return _decode(loaded, jobs, output[:, prompt_len:].cpu(), n, close_from)


class _FirstToken:
    """A no-op logits processor noting when the first token's logits exist (end of prefill)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, input_ids, scores):
        if self.at is None:
            self.at = time.perf_counter()
        return scores


def _record(started: float, first_token_at: float | None, row_jobs: list[Job], shared: int) -> None:
    ended = time.perf_counter()
    first = first_token_at or ended
    STATS.add(prefill_s=first - started, decode_s=ended - first, batches=1, reused_tokens=shared * len(row_jobs),
              prompt_tokens=sum(len(j.prompt_ids) for j in row_jobs))


def _pad(loaded: LoadedModel, row_jobs: list[Job], shared: int):
    """Rows as [shared prefix][padding][own tokens]; without a shared prefix plain left padding.

    Returns input ids, attention mask, and per row the (start, end) of its padding.
    """
    import torch

    width = max(len(j.prompt_ids) for j in row_jobs)
    pad = loaded.tokenizer.pad_token_id
    input_ids = torch.full((len(row_jobs), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(row_jobs), width), dtype=torch.long)
    spans = []
    for row, job in enumerate(row_jobs):
        own = job.prompt_ids[shared:]
        start = width - len(own)
        input_ids[row, :shared] = torch.tensor(job.prompt_ids[:shared], dtype=torch.long)
        input_ids[row, start:] = torch.tensor(own, dtype=torch.long)
        attention_mask[row, :shared] = 1
        attention_mask[row, start:] = 1
        spans.append((shared, start))
    return input_ids, attention_mask, spans


def _seed(job: Job) -> int:
    return job.options.seed if job.options.seed is not None else secrets.randbits(63)


def _row_seeds(jobs: list[Job], expand: int) -> list[int]:
    """Sequence k of a request with seed s uses s for k=0 (n=1 and n>1 agree on the first answer)."""
    seeds = []
    for job in jobs:
        base = _seed(job) % (1 << 63)
        seeds.extend(base if k == 0 else (base * 1_000_003 + k) % (1 << 63) for k in range(expand))
    return seeds


def _decode(loaded: LoadedModel, jobs: list[Job], generated, n: int, close_from: int | None) -> list[Decoded]:
    """Per job: its n answers, completion tokens, and finish reason.

    An answer ends by "length" when no stop token / stop string came within its max_tokens, or,
    for structured output, when the grammar's closing phase (from ``close_from``) had to end it.
    """
    stop = set(loaded.stop_ids)
    out: list[Decoded] = []
    for j, job in enumerate(jobs):
        answers, used, cut = [], 0, False
        for k in range(n):
            tokens = generated[j * n + k].tolist()
            length = next((i for i, t in enumerate(tokens) if t in stop), None)
            content = tokens[:length] if length is not None else tokens
            if job.schema is None:
                limited = len(content) > job.max_new_tokens or length is None
                content = content[: job.max_new_tokens]  # its own limit inside a longer batch
            else:
                limited = close_from is not None and len(content) > close_from
            used += len(content) + (1 if length is not None else 0)
            text = loaded.tokenizer.decode(content, skip_special_tokens=True)
            if job.schema is None:
                plain = _cut_at_stop(text, job.options.stop)
                limited = limited and plain == text  # a stop string ended it first
                answers.append(plain.strip())
            else:
                answers.append(_normalised_json(text))
            cut = cut or limited
        out.append(Decoded(answers, used, "length" if cut else "stop"))
    return out


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """OpenAI's convention: the answer ends before the first stop string, which is not included."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else text


def _normalised_json(text: str) -> str | None:
    """The structured answer as strict JSON, or None when it is not complete JSON.

    Control characters are masked during decoding; re-encoding is the safety net that keeps the
    answer strict JSON whatever a grammar let through.
    """
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    try:
        return json.dumps(json.loads(text, strict=False), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        return None
