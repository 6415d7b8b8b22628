"""The in-process ``provider: transformers`` backend: batched generation with a local HF model.

How it works (see the README section "The local model" for the user-facing version):

- The model (bundled name, GGUF file, HF dir or PEFT adapter dir; see ``bundled.resolve_model_dir``)
  is loaded once per process and device, and shared by every endpoint naming it.
- Requests are grouped by generation settings, sorted by prompt length (less padding), cut into
  batches sized by memory (and ``batch_size``), left-padded and run through one ``generate()``.
- Sampling is done by our own logits processor with one ``torch.Generator`` per row, so a request
  with a ``seed`` gives the same answer alone or inside any batch (up to float rounding between
  batch shapes); ``generate`` itself runs greedy and just takes the token we picked.
- ``response_schema`` → xgrammar JSON-schema grammar as a logits processor (compact JSON, bounded
  strings/arrays) plus a closing phase near ``max_tokens`` that only lets the model close what it
  opened, so every structured answer is complete, schema-valid JSON.
- ``num_return_sequences`` = n > 1: ``LLMResult.text`` is a JSON array of the n answers (strings;
  for structured output the parsed objects), token counts are summed over the n sequences.

torch / transformers / xgrammar are imported inside functions only: importing this module is cheap.
"""

from __future__ import annotations

import copy
import json
import math
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import did_you_mean
from .bundled import BUNDLED, LocalModelError, resolve_model_dir
from .types import LLMRequest, LLMResult

DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_MAX_ITEMS = 32  # added to array schemas without maxItems
CPU_MAX_BATCH = 64  # on 2-4 cores larger batches stop paying off (bench/local_generation.py)
GPU_MAX_BATCH = 256
_MEMORY_FRACTION = {"cpu": 0.25, "cuda": 0.7, "mps": 0.5}


class InvalidParametersError(LocalModelError):
    """modelParameters / endpoint parameters that the local backend does not understand."""


# --------------------------------------------------------------------------------------------
# Generation settings


class GenerationOptions(BaseModel):
    """The generation settings a request may carry (``modelParameters``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_new_tokens: int = Field(DEFAULT_MAX_NEW_TOKENS, ge=1, alias="max_tokens")
    temperature: float | None = Field(None, ge=0)
    do_sample: bool | None = None
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = no top-k filter")
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.0, gt=0)
    num_return_sequences: int = Field(1, ge=1, alias="n")
    seed: int | None = None
    stop: tuple[str, ...] = Field((), description="plain text ends before the first of these strings")
    sample_id: int | str | None = Field(None, description="cache key only: distinct samples; ignored here")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def sampling(self) -> bool:
        """do_sample when given; else sample exactly when temperature > 0 (OpenAI's convention)."""
        if self.do_sample is not None:
            return self.do_sample and self.temperature != 0
        return bool(self.temperature)

    @model_validator(mode="after")
    def _consistent(self) -> GenerationOptions:
        n, beams = self.num_return_sequences, self.num_beams
        if n > 1 and beams == 1 and not self.sampling:
            raise ValueError(f"num_return_sequences={n} with greedy decoding gives {n} identical answers: "
                             "set temperature > 0 (or do_sample: true), or num_beams >= n")
        if beams > 1 and n > beams:
            raise ValueError(f"num_return_sequences={n} must be <= num_beams={beams}")
        return self

    def group_key(self) -> tuple:
        """Requests that can share one generate() call: everything but the seed."""
        return tuple(v for k, v in self.model_dump().items() if k not in ("seed", "sample_id")) + (self.sampling,)


_UNSUPPORTED = {  # OpenAI settings with a local counterpart
    "presence_penalty": "the local backend has no presence_penalty: use repetition_penalty (e.g. 1.2)",
    "frequency_penalty": "the local backend has no frequency_penalty: use repetition_penalty (e.g. 1.2)",
}
_ALIASES = {"max_tokens": "max_new_tokens", "max_completion_tokens": "max_new_tokens",
            "n": "num_return_sequences"}


def canonical_parameters(parameters: dict[str, Any] | None, where: str = "modelParameters") -> dict[str, Any]:
    """Parameters under their canonical names (max_tokens → max_new_tokens, n → num_return_sequences)."""
    canonical: dict[str, Any] = {}
    for key, value in (parameters or {}).items():
        if value is None:
            continue
        name = _ALIASES.get(key, key)
        if name in canonical and canonical[name] != value:
            raise InvalidParametersError(f"{where}: {key!r} and another spelling of {name!r} have "
                                         "different values", hint=f"keep only one of them ({name})")
        canonical[name] = value
    return canonical


def parse_options(parameters: dict[str, Any] | None, where: str = "modelParameters") -> GenerationOptions:
    """Validate generation settings, with a message naming the bad key and what it accepts."""
    try:
        return GenerationOptions.model_validate(canonical_parameters(parameters, where))
    except ValidationError as exc:
        raise _options_error(exc, where) from None


def _options_error(exc: ValidationError, where: str) -> InvalidParametersError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "parameters"
    key = {"max_tokens": "max_tokens/max_new_tokens", "n": "num_return_sequences"}.get(key, key)
    known = sorted(set(GenerationOptions.model_fields) | set(_ALIASES))
    if first["type"] == "extra_forbidden":
        hint = (_UNSUPPORTED.get(key) or did_you_mean(key, known)
                or f"the local backend accepts: {', '.join(known)}")
        return InvalidParametersError(f"{where}: unknown generation parameter {key!r}", hint=hint)
    value = first.get("input")
    return InvalidParametersError(f"{where}: {key}={value!r} is invalid: {first['msg']}",
                                  hint=f"the local backend accepts: {', '.join(known)}")


# --------------------------------------------------------------------------------------------
# Loading (once per process, model dir and device)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    context_window: int
    kv_bytes_per_token: int
    stop_ids: list[int]
    lock: threading.RLock = field(default_factory=threading.RLock)  # grammar() is called under it
    _grammar: Any = None  # _GrammarTools, built on first structured request

    def grammar(self) -> _GrammarTools:
        if self._grammar is None:  # built once; the lock only matters the first time
            with self.lock:
                if self._grammar is None:
                    self._grammar = _GrammarTools(self)
        return self._grammar


_MODELS: dict[tuple[str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def best_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def import_torch():
    """torch, imported with OMP_WAIT_POLICY=PASSIVE unless the user set it.

    With libgomp's default (spinning) wait policy, generation on a CPU shared with other busy
    processes was 8x slower with 2 threads than with 1 (measured on the 2-core dev box at load 7);
    passive waiting removes that collapse. Only effective if torch is not imported yet.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    return torch


def load_model(model_ref: str, device: str | None = None) -> LoadedModel:
    """The loaded model for a model reference, loading it on first use (thread-safe)."""
    import_torch()
    model_dir = resolve_model_dir(model_ref)
    device = best_device() if device in (None, "", "auto") else device
    key = (str(model_dir.resolve()), device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load(model_dir, device)
        return _MODELS[key]


def _pick_dtype(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32  # CPU: bf16 matmuls are slower than fp32 on most CPUs


def _load(model_dir: Path, device: str) -> LoadedModel:
    try:
        import torch  # noqa: F401  (fail here, with the install hint)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise LocalModelError(f"the local model needs torch and transformers ({exc})",
                              hint="pip install 'sqlsynth[local]'") from None
    dtype = _pick_dtype(device)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter the run's own progress
    try:
        model, tokenizer_dir = _load_weights(model_dir, dtype)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        model.to(device).eval()
    except LocalModelError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        hint = ("check the device (cpu, cuda, mps)" if "device" in str(exc).lower()
                else "is it a complete model saved with save_pretrained()?")
        raise LocalModelError(f"cannot load the model: {exc}", path=model_dir, hint=hint) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _prepare_tokenizer(tokenizer, model)
    config = model.config
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype,
                       context_window=_context_window(config),
                       kv_bytes_per_token=_kv_bytes_per_token(config, dtype),
                       stop_ids=_stop_ids(model, tokenizer))


def _load_weights(model_dir: Path, dtype):
    """A plain HF model dir, or a PEFT adapter merged into its base (training/ writes those)."""
    from transformers import AutoModelForCausalLM

    if (model_dir / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype), model_dir
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    base_dir = resolve_model_dir(adapter.get("base_model_name_or_path") or "")
    try:
        from peft import PeftModel
    except ImportError:
        raise LocalModelError("this is a LoRA/PEFT adapter dir and peft is not installed", path=model_dir,
                              hint="pip install peft, or merge the adapter when training") from None
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(base, model_dir).merge_and_unload()
    has_tokenizer = any((model_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    return merged, (model_dir if has_tokenizer else base_dir)


# ChatML, used only when a model dir comes without a chat template (a base model).
_FALLBACK_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _prepare_tokenizer(tokenizer, model) -> None:
    tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
    if tokenizer.pad_token_id is None:
        eos = tokenizer.eos_token_id
        if eos is None:
            eos = _first(model.generation_config.eos_token_id)
        tokenizer.pad_token_id = eos if eos is not None else 0
    if not tokenizer.chat_template:
        tokenizer.chat_template = _FALLBACK_CHAT_TEMPLATE


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _stop_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _context_window(config) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _kv_bytes_per_token(config, dtype) -> int:
    """Memory one token of one sequence costs during generation (KV cache, with slack)."""
    import torch

    layers = getattr(config, "num_hidden_layers", 24)
    heads = getattr(config, "num_attention_heads", 16)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    size = torch.finfo(dtype).bits // 8
    return int(2 * layers * kv_heads * head_dim * size * 1.5)


# --------------------------------------------------------------------------------------------
# The backend


@dataclass
class _Job:
    """One request, tokenized and validated, waiting for its batch."""

    index: int
    prompt_ids: list[int]
    options: GenerationOptions
    schema: dict[str, Any] | None
    max_new_tokens: int
    result: LLMResult | None = None


class TransformersBackend:
    """Backend for ``provider: transformers`` endpoints (see the module docstring and the README)."""

    def __init__(self, endpoint, name: str):
        self.endpoint = endpoint
        self.name = name
        where = f"endpoint '{name}' parameters"
        parse_options(endpoint.parameters, where=where)  # fail at startup, not on the first row
        self._defaults = canonical_parameters(endpoint.parameters, where)

    def identity(self) -> dict[str, Any]:
        """provider + model + a fingerprint of the weights, so a retrained checkpoint misses the cache."""
        return {"provider": "transformers", "model": self.endpoint.model,
                "revision": model_revision(self.endpoint.model)}

    @property
    def loaded(self) -> LoadedModel:
        return load_model(self.endpoint.model, self.endpoint.device)

    def generate_many(self, requests: list[LLMRequest]) -> list[LLMResult]:
        """Answer every request in order. Bad parameters raise before anything runs."""
        options = [self._options(r, i) for i, r in enumerate(requests)]
        if not requests:
            return []
        loaded = self.loaded
        jobs = [self._job(loaded, i, r, o) for i, (r, o) in enumerate(zip(requests, options, strict=True))]
        for batch in self._batches([j for j in jobs if j.result is None], loaded):
            _run_batch(loaded, batch)
        return [job.result for job in jobs]

    def _options(self, request: LLMRequest, index: int) -> GenerationOptions:
        where = f"endpoint '{self.name}' modelParameters (request {index})"
        merged = {**self._defaults, **canonical_parameters(request.parameters, where)}
        return parse_options(merged, where=where)

    def _job(self, loaded: LoadedModel, index: int, request: LLMRequest,
             options: GenerationOptions) -> _Job:
        try:
            prompt_ids = encode_chat(loaded.tokenizer, request.messages)
        except Exception as exc:  # e.g. a template that insists on alternating user/assistant turns
            job = _Job(index, [], options, request.response_schema, 0)
            job.result = LLMResult(text=None, error=f"the model's chat template rejected the messages: {exc}")
            return job
        window = min(self.endpoint.context_window or loaded.context_window, loaded.context_window)
        room = window - len(prompt_ids)
        job = _Job(index, prompt_ids, options, request.response_schema,
                   max_new_tokens=min(options.max_new_tokens, max(room, 0)))
        if job.schema is not None:  # a bad schema is the user's mistake: raise before generating
            loaded.grammar().compile(job.schema, max(job.max_new_tokens, 1))
        if room <= 0:
            job.result = LLMResult(text=None, prompt_tokens=len(prompt_ids), error=(
                f"prompt has {len(prompt_ids)} tokens; the model's context window is {window}"))
        return job

    def _batches(self, jobs: list[_Job], loaded: LoadedModel) -> list[list[_Job]]:
        """Same settings together, shortest prompts first, cut where memory or batch_size says."""
        groups: dict[tuple, list[_Job]] = {}
        for job in jobs:
            schema_key = json.dumps(job.schema, sort_keys=True) if job.schema is not None else None
            groups.setdefault(job.options.group_key() + (schema_key,), []).append(job)
        batches = []
        for group in groups.values():
            group.sort(key=lambda j: len(j.prompt_ids))
            if _is_beam_sampling(group[0].options):
                batches.extend([j] for j in group)  # seeded per request: HF samples beams globally
                continue
            batches.extend(_cut(group, self._max_batch(loaded), loaded))
        return batches

    def _max_batch(self, loaded: LoadedModel) -> int:
        cap = CPU_MAX_BATCH if loaded.device == "cpu" else GPU_MAX_BATCH
        return self.endpoint.batch_size or cap


def model_revision(model_ref: str) -> str | None:
    """A short fingerprint of the model's files; None when the model is not there (yet)."""
    import hashlib

    try:
        if model_ref.lower() in BUNDLED:
            from importlib.metadata import version

            return f"{BUNDLED[model_ref.lower()].distribution}=={version(BUNDLED[model_ref.lower()].distribution)}"
        path = Path(model_ref).expanduser()
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    except Exception:
        return None
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def encode_chat(tokenizer, messages) -> list[int]:
    """Prompt token ids: the chat template with the assistant turn opened."""
    text = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _is_beam_sampling(options: GenerationOptions) -> bool:
    return options.num_beams > 1 and options.sampling


def _rows_per_job(options: GenerationOptions) -> int:
    return max(options.num_beams, options.num_return_sequences)


def _cut(group: list[_Job], max_batch: int, loaded: LoadedModel) -> list[list[_Job]]:
    budget = _memory_budget(loaded.device)
    batches: list[list[_Job]] = []
    current: list[_Job] = []
    for job in group:  # sorted by prompt length: the last job is the longest
        rows = (len(current) + 1) * _rows_per_job(job.options)
        cost = rows * (len(job.prompt_ids) + job.max_new_tokens) * loaded.kv_bytes_per_token
        if current and (len(current) >= max_batch or cost > budget):
            batches.append(current)
            current = []
        current.append(job)
    if current:
        batches.append(current)
    return batches


def _memory_budget(device: str) -> int:
    """Bytes generation may use for KV caches: a fraction of what is free on the device."""
    free = _free_memory(device)
    return int(free * _MEMORY_FRACTION.get(device.split(":")[0], 0.25))


def _free_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


# --------------------------------------------------------------------------------------------
# One batch through generate()


def _run_batch(loaded: LoadedModel, jobs: list[_Job]) -> None:
    """Generate for jobs sharing settings; fills ``job.result`` (an error result if generate fails)."""
    started = time.perf_counter()
    try:
        with loaded.lock:
            texts, counts = _generate(loaded, jobs)
    except Exception as exc:  # OOM, device errors: every request of the batch gets the error
        for job in jobs:
            job.result = LLMResult(text=None, prompt_tokens=len(job.prompt_ids),
                                   error=f"local generation failed: {type(exc).__name__}: {exc}")
        return
    latency = time.perf_counter() - started
    for job, answers, completion in zip(jobs, texts, counts, strict=True):
        job.result = _result(job, answers, completion, latency)


def _result(job: _Job, answers: list[str | None], completion: int, latency: float) -> LLMResult:
    if any(a is None for a in answers):
        return LLMResult(text=None, prompt_tokens=len(job.prompt_ids), completion_tokens=completion,
                         latency_s=latency, error=(
                             "structured answer is not complete JSON within "
                             f"max_tokens={job.options.max_new_tokens}: raise max_tokens"))
    if len(answers) == 1:
        text = answers[0]
    elif job.schema is not None:
        text = json.dumps([json.loads(a) for a in answers], ensure_ascii=False)
    else:
        text = json.dumps(answers, ensure_ascii=False)
    return LLMResult(text=text, prompt_tokens=len(job.prompt_ids), completion_tokens=completion,
                     latency_s=latency)


def _generate(loaded: LoadedModel, jobs: list[_Job]) -> tuple[list[list[str | None]], list[int]]:
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    options = jobs[0].options
    n = options.num_return_sequences
    expand = n if options.num_beams == 1 else 1  # beams: generate() expands itself
    row_jobs = [job for job in jobs for _ in range(expand)]
    input_ids, attention_mask, pads = _left_pad(loaded, row_jobs)
    prompt_len = input_ids.shape[1]
    max_new = max(job.max_new_tokens for job in jobs)
    rows_per_input = options.num_beams  # rows generate() sees per input row
    processors = LogitsProcessorList()
    if options.repetition_penalty != 1.0:
        processors.append(_RepetitionPenalty(options.repetition_penalty, pads, rows_per_input))
    grammar_proc = None
    if jobs[0].schema is not None:
        grammar_proc = loaded.grammar().processor(jobs[0].schema, max_new, prompt_len,
                                                  n_rows=len(row_jobs) * rows_per_input)
        processors.append(grammar_proc)
        max_new = grammar_proc.hard_limit
    beam_sampling = _is_beam_sampling(options)
    if options.sampling and not beam_sampling:
        processors.append(_RowSampler(options, _row_seeds(jobs, expand)))
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
    with torch.inference_mode():
        output = loaded.model.generate(input_ids=input_ids.to(loaded.device),
                                       attention_mask=attention_mask.to(loaded.device),
                                       generation_config=config, logits_processor=processors,
                                       tokenizer=loaded.tokenizer if stop_strings else None)
    return _decode(loaded, jobs, output[:, prompt_len:].cpu(), n)


def _left_pad(loaded: LoadedModel, row_jobs: list[_Job]):
    import torch

    width = max(len(j.prompt_ids) for j in row_jobs)
    pad = loaded.tokenizer.pad_token_id
    input_ids = torch.full((len(row_jobs), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(row_jobs), width), dtype=torch.long)
    pads = []
    for row, job in enumerate(row_jobs):
        start = width - len(job.prompt_ids)
        input_ids[row, start:] = torch.tensor(job.prompt_ids, dtype=torch.long)
        attention_mask[row, start:] = 1
        pads.append(start)
    return input_ids, attention_mask, pads


def _seed(job: _Job) -> int:
    return job.options.seed if job.options.seed is not None else secrets.randbits(63)


def _row_seeds(jobs: list[_Job], expand: int) -> list[int]:
    """Sequence k of a request with seed s uses s for k=0 (n=1 and n>1 agree on the first answer)."""
    seeds = []
    for job in jobs:
        base = _seed(job) % (1 << 63)
        seeds.extend(base if k == 0 else (base * 1_000_003 + k) % (1 << 63) for k in range(expand))
    return seeds


def _decode(loaded: LoadedModel, jobs: list[_Job], generated, n: int):
    """Per job: its n answer texts (None for an incomplete structured answer) and completion tokens."""
    stop = set(loaded.stop_ids)
    texts: list[list[str | None]] = []
    counts: list[int] = []
    for j, job in enumerate(jobs):
        answers, used = [], 0
        for k in range(n):
            tokens = generated[j * n + k].tolist()
            length = next((i for i, t in enumerate(tokens) if t in stop), None)
            content = tokens[:length] if length is not None else tokens
            if job.schema is None:
                content = content[: job.max_new_tokens]  # its own limit inside a longer batch
            used += len(content) + (1 if length is not None else 0)
            text = loaded.tokenizer.decode(content, skip_special_tokens=True)
            answers.append(_cut_at_stop(text, job.options.stop).strip() if job.schema is None
                           else _normalised_json(text))
        texts.append(answers)
        counts.append(used)
    return texts, counts


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


# --------------------------------------------------------------------------------------------
# Logits processors (plain callables with the transformers LogitsProcessor signature)


class _RepetitionPenalty:
    """transformers' repetition penalty, but blind to left padding (so batches don't change answers)."""

    def __init__(self, penalty: float, pads: list[int], rows_per_input: int):
        self.penalty, self.pads, self.rows_per_input = penalty, pads, rows_per_input

    def __call__(self, input_ids, scores):
        for row in range(scores.shape[0]):
            ids = input_ids[row, self.pads[row // self.rows_per_input]:]
            picked = scores[row, ids]
            scores[row, ids] = picked.where(picked < 0, picked / self.penalty).where(
                picked >= 0, picked * self.penalty)
        return scores


class _RowSampler:
    """Temperature / top-k / top-p sampling with one generator per row; leaves only the drawn token.

    generate() then runs greedy and takes that token, so each row's draws depend on its own seed
    only, never on the batch it landed in.
    """

    def __init__(self, options: GenerationOptions, seeds: list[int]):
        self.temperature = options.temperature if options.temperature is not None else 1.0
        self.top_k, self.top_p = options.top_k, options.top_p
        self.seeds = seeds
        self.generators = None

    def __call__(self, input_ids, scores):
        import torch

        if self.generators is None:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(self._filtered(scores.float() / self.temperature), dim=-1)
        # Inverse-CDF draw: one uniform per row from the row's own generator (multinomial would
        # draw per row over the whole vocabulary, ~10x slower on CPU).
        uniforms = torch.cat([torch.rand(1, generator=g, device=scores.device) for g in self.generators])
        cdf = probs.cumsum(dim=-1)
        target = (uniforms[:, None] * cdf[:, -1:]).clamp_min(1e-30)  # never a zero-probability token
        picked = torch.searchsorted(cdf, target).squeeze(1).clamp_(max=scores.shape[-1] - 1)
        broken = ~(torch.isfinite(cdf[:, -1]) & (cdf[:, -1] > 0))
        picked = torch.where(broken, scores.argmax(dim=-1), picked)  # nothing to sample from
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picked[:, None], 0.0)
        return out

    def _filtered(self, logits):
        import torch

        if self.top_k and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) > self.top_p  # keep the top token always
            logits = logits.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
        return logits


# --------------------------------------------------------------------------------------------
# Grammar-constrained decoding


def bounded_schema(schema: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """A copy of ``schema`` with maxItems / maxLength added where absent (a tiny model rambles).

    Strings get at most ~4 characters per token of budget, arrays DEFAULT_MAX_ITEMS items; bounds the
    user wrote are kept. The closing phase (``_GrammarProcessor``) is what guarantees completion.
    """
    max_length = max(16, 4 * max_new_tokens)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        free_text = not any(k in node for k in ("enum", "const", "pattern", "format"))
        if "string" in types and free_text and "maxLength" not in node:
            out["maxLength"] = max(max_length, node.get("minLength", 0))
        if "array" in types and "maxItems" not in node:
            out["maxItems"] = max(DEFAULT_MAX_ITEMS, node.get("minItems", 0))
        return out

    return walk(copy.deepcopy(schema))


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """The shortest JSON value ``schema`` accepts (near enough): sizes the closing phase's token reserve."""
    defs = schema.get("$defs", schema.get("definitions", {})) if defs is None else defs
    if depth > 8:
        return None
    if "$ref" in schema:
        return minimal_instance(defs.get(schema["$ref"].split("/")[-1], {}), defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [minimal_instance(s, defs, depth + 1) for s in schema[key]]
            return min(options, key=lambda v: len(json.dumps(v)))
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return min(schema["enum"], key=lambda v: len(json.dumps(v)))
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind == "array":
        return [minimal_instance(schema.get("items") or {}, defs, depth + 1)] * schema.get("minItems", 0)
    if kind == "object":
        props = schema.get("properties", {})
        return {k: minimal_instance(props.get(k, {}), defs, depth + 1) for k in schema.get("required", [])}
    return {"boolean": False, "null": None}.get(kind, 0)


class _GrammarTools:
    """Per-model xgrammar state: tokenizer info, compiler (with its cache), the 'closer' token mask."""

    def __init__(self, loaded: LoadedModel):
        try:
            import xgrammar as xgr
        except ImportError:
            raise LocalModelError("structured output on the local model needs xgrammar",
                                  hint="pip install xgrammar  (or 'sqlsynth[local]')") from None
        self.vocab_size = loaded.model.get_output_embeddings().weight.shape[0]
        info = xgr.TokenizerInfo.from_huggingface(loaded.tokenizer, vocab_size=self.vocab_size,
                                                  stop_token_ids=loaded.stop_ids)
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.tokenizer = loaded.tokenizer
        self._token_masks(loaded)
        self._compiled: dict[str, Any] = {}

    def _token_masks(self, loaded: LoadedModel) -> None:
        """Token menus for the processor, from each token's text.

        - quote / bracket closers: tokens made only of " ] } starting with a quote / a bracket;
        - letters: their being allowed tells that a row is inside a string;
        - no_control: tokens without raw control characters. Compact JSON never needs one, and
          xgrammar 0.2.8 lets them into strings that have a maxLength/minLength (invalid JSON).
        """
        import torch

        quote, bracket = (torch.zeros(self.vocab_size, dtype=torch.bool) for _ in range(2))
        clean = torch.ones(self.vocab_size, dtype=torch.bool)
        self.letters: list[int] = []
        for token_id in range(min(len(loaded.tokenizer), self.vocab_size)):
            if token_id in loaded.stop_ids:
                continue
            text = loaded.tokenizer.decode([token_id])
            if any(ord(c) < 0x20 or c == "\x7f" for c in text):
                clean[token_id] = False
            elif text and set(text) <= set('"]}'):
                (quote if text[0] == '"' else bracket)[token_id] = True
            elif len(text) == 1 and text.isascii() and text.isalpha() and len(self.letters) < 8:
                self.letters.append(token_id)
        self.quote_closers, self.bracket_closers = pack_bitmask(quote), pack_bitmask(bracket)
        self.no_control = pack_bitmask(clean)

    def compile(self, schema: dict[str, Any], max_new_tokens: int):
        text = json.dumps(bounded_schema(schema, max_new_tokens))  # key order = generation order
        if text not in self._compiled:
            try:
                self._compiled[text] = self.compiler.compile_json_schema(text, any_whitespace=False)
            except Exception as exc:
                raise LocalModelError(f"cannot build a grammar from the response schema: {exc}",
                                      hint="check the JSON schema (responseFormat)") from None
        return self._compiled[text]

    def reserve(self, schema: dict[str, Any]) -> tuple[int, int]:
        """(typical, worst) tokens the shortest valid answer takes, in xgrammar's compact spacing.

        Typical: as the tokenizer would split it; worst: one token per byte (the model may spell a
        forced key in small pieces). Closing starts ``typical`` tokens before max_tokens; generation
        may run ``worst`` tokens past it, so a structured answer always ends as complete JSON.
        """
        shortest = json.dumps(minimal_instance(schema), separators=(", ", ": "), ensure_ascii=False)
        typical = len(self.tokenizer(shortest, add_special_tokens=False)["input_ids"]) + 2
        return min(typical, 256), min(len(shortest.encode()) + 2, 1024)

    def processor(self, schema: dict[str, Any], max_new_tokens: int, prompt_len: int,
                  n_rows: int) -> _GrammarProcessor:
        typical, worst = self.reserve(schema)
        return _GrammarProcessor(self, self.compile(schema, max_new_tokens), prompt_len, n_rows,
                                 close_from=max(0, max_new_tokens - typical),
                                 hard_limit=max_new_tokens + worst)


def pack_bitmask(allowed) -> Any:
    """A bool vector → xgrammar's int32 bitmask row (bit j of word k is token 32k + j)."""
    import torch

    words = math.ceil(allowed.shape[0] / 32)
    padded = torch.zeros(words * 32, dtype=torch.int64)
    padded[: allowed.shape[0]] = allowed.to(torch.int64)
    weights = torch.tensor([1 << j for j in range(32)], dtype=torch.int64)
    packed = (padded.view(words, 32) * weights).sum(dim=1)
    packed = torch.where(packed >= (1 << 31), packed - (1 << 32), packed)  # as signed int32
    return packed.to(torch.int32)[None, :]


class _GrammarProcessor:
    """Masks each row to its grammar; from ``close_from`` tokens on, to closing tokens when it can.

    Matcher state is keyed by the row's generated prefix, so beam search (rows reorder between
    steps) works as well as plain batches. After ``hard_limit`` tokens generate() stops anyway.
    """

    def __init__(self, tools: _GrammarTools, compiled, prompt_len: int, n_rows: int,
                 close_from: int, hard_limit: int):
        import xgrammar as xgr

        self.tools, self.compiled = tools, compiled
        self.prompt_len, self.close_from, self.hard_limit = prompt_len, close_from, hard_limit
        self.bitmask = xgr.allocate_token_bitmask(n_rows, tools.vocab_size)
        self.states: dict[tuple[int, ...], Any] = {}

    def __call__(self, input_ids, scores):
        import xgrammar as xgr

        step = input_ids.shape[1] - self.prompt_len
        generated = input_ids[:, self.prompt_len:].tolist()
        states: dict[tuple[int, ...], Any] = {}
        xgr.reset_token_bitmask(self.bitmask)
        active = []
        for row, tokens in enumerate(generated):
            key = tuple(tokens)
            matcher = states.get(key)
            if matcher is None:
                matcher = states[key] = self._advance(tokens)
            if matcher.is_terminated():
                continue  # finished row: generate() pads it
            matcher.fill_next_token_bitmask(self.bitmask, row)
            if step >= self.close_from:
                self._prefer_closing(row)
            active.append(row)
        self.states = states
        if active:
            self.bitmask[active] &= self.tools.no_control
            xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device),
                                            vocab_size=self.tools.vocab_size, indices=active)
        return scores

    def _advance(self, tokens: list[int]):
        import xgrammar as xgr

        if not tokens:
            return xgr.GrammarMatcher(self.compiled)
        parent = self.states[tuple(tokens[:-1])]
        if parent.is_terminated():
            return parent
        child = parent.fork()
        if not child.accept_token(tokens[-1]):
            raise LocalModelError(f"internal: token {tokens[-1]} broke the grammar")
        return child

    def _prefer_closing(self, row: int) -> None:
        """Narrow the row's allowed tokens to closers where some are allowed.

        Inside a string ] and } are plain text, so there only a quote closes; elsewhere ] and } come
        first, and a quote only when a value must still be written (it opens, then closes, "").
        """
        allowed = self.bitmask[row]
        tools = self.tools
        in_string = any(_bit(allowed, t) for t in tools.letters)
        menus = [tools.quote_closers] if in_string else [tools.bracket_closers, tools.quote_closers]
        for menu in menus:
            narrowed = allowed & menu[0]
            if bool(narrowed.any()):
                self.bitmask[row] = narrowed
                return


def _bit(row, token_id: int) -> bool:
    return bool((int(row[token_id // 32]) >> (token_id % 32)) & 1)
