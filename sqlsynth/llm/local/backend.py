"""``TransformersBackend``: the endpoint-facing class that turns requests into jobs and batches."""

from __future__ import annotations

import json
from typing import Any

from ..types import LLMRequest, LLMResult
from .batching import CPU_MAX_BATCH, GPU_MAX_BATCH, Job, cut, is_beam_sampling
from .generation import run_batch
from .loading import LoadedModel, encode_chat, load_model, model_revision
from .memory import release_weight_pages
from .options import GenerationOptions, parse_options


class TransformersBackend:
    """Backend for ``provider: transformers`` endpoints (see the module docstring and the README)."""

    def __init__(self, endpoint, name: str):
        self.endpoint = endpoint
        self.name = name
        # checked at startup, not on the first row; merged into each request by the engine, once
        # (params.effective), so requests arrive with their effective parameters
        parse_options(endpoint.parameters, where=f"endpoint '{name}' parameters")

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
            run_batch(loaded, batch)
        with loaded.lock:  # not while another thread generates with the same weights
            release_weight_pages(loaded.model.name_or_path)
        return [job.result for job in jobs]

    def _options(self, request: LLMRequest, index: int) -> GenerationOptions:
        where = f"endpoint '{self.name}' modelParameters (request {index})"
        return parse_options(request.parameters, where=where)

    def _job(self, loaded: LoadedModel, index: int, request: LLMRequest,
             options: GenerationOptions) -> Job:
        try:
            prompt_ids = encode_chat(loaded.tokenizer, request.messages)
        except Exception as exc:  # e.g. a template that insists on alternating user/assistant turns
            job = Job(index, [], options, request.response_schema, 0)
            job.result = LLMResult(text=None, finish_reason="error",
                                   error=f"the model's chat template rejected the messages: {exc}")
            return job
        window = min(self.endpoint.context_window or loaded.context_window, loaded.context_window)
        room = window - len(prompt_ids)
        job = Job(index, prompt_ids, options, request.response_schema,
                   max_new_tokens=min(options.max_new_tokens, max(room, 0)))
        if job.schema is not None:  # a bad schema is the user's mistake: raise before generating
            loaded.grammar().compile(job.schema, max(job.max_new_tokens, 1))
        if room <= 0:
            job.result = LLMResult(text=None, prompt_tokens=len(prompt_ids), finish_reason="error", error=(
                f"prompt has {len(prompt_ids)} tokens; the model's context window is {window}"))
        return job

    def _batches(self, jobs: list[Job], loaded: LoadedModel) -> list[list[Job]]:
        """Same settings together, shortest prompts first, cut where memory or batch_size says."""
        groups: dict[tuple, list[Job]] = {}
        for job in jobs:
            schema_key = json.dumps(job.schema, sort_keys=True) if job.schema is not None else None
            groups.setdefault(job.options.group_key() + (schema_key,), []).append(job)
        batches = []
        for group in groups.values():
            group.sort(key=lambda j: len(j.prompt_ids))
            if is_beam_sampling(group[0].options):
                batches.extend([j] for j in group)  # seeded per request: HF samples beams globally
                continue
            extra = loaded.grammar().reserve(group[0].schema)[1] if group[0].schema is not None else 0
            batches.extend(cut(group, self._max_batch(loaded), loaded, extra_steps=extra))
        return batches

    def _max_batch(self, loaded: LoadedModel) -> int:
        cap = CPU_MAX_BATCH if loaded.device == "cpu" else GPU_MAX_BATCH
        return self.endpoint.batch_size or cap
