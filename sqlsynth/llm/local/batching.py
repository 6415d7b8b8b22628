"""Cutting requests into batches: one job per request, batches sized by memory and batch_size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import LLMResult
from .loading import LoadedModel, loaded_models
from .memory import CPU_MIN_BATCH_BYTES, batch_budget
from .options import GenerationOptions
from .prefix import common_prefix, reusable_length

CPU_MAX_BATCH = 64  # on 2-4 cores larger batches stop paying off (bench/local_generation.py)
GPU_MAX_BATCH = 256


@dataclass
class Job:
    """One request, tokenized and validated, waiting for its batch."""

    index: int
    prompt_ids: list[int]
    options: GenerationOptions
    schema: dict[str, Any] | None
    max_new_tokens: int
    result: LLMResult | None = None


def is_beam_sampling(options: GenerationOptions) -> bool:
    return options.num_beams > 1 and options.sampling


def _rows_per_job(options: GenerationOptions) -> int:
    return max(options.num_beams, options.num_return_sequences)


def memory_budget(loaded: LoadedModel) -> int:
    """Bytes one generate() batch of ``loaded`` may use (memory.batch_budget; tests replace this).

    On CPU the weights of every other model loaded in the process come off the budget (down to
    CPU_MIN_BATCH_BYTES): `make eval` holds the base model and the student (+0.5 GB) at once.
    """
    budget = batch_budget(loaded.device)
    if loaded.device != "cpu":
        return budget
    others = sum(m.weight_bytes for m in loaded_models() if m is not loaded and m.device == "cpu")
    return max(CPU_MIN_BATCH_BYTES, budget - others) if others else budget


def cut(group: list[Job], max_batch: int, loaded: LoadedModel, extra_steps: int = 0) -> list[list[Job]]:
    """Consecutive batches of ``group`` (sorted by prompt length), each within ``max_batch`` jobs and
    the memory budget, then evened out: 64 jobs of which 21 fit become 22+21+21 (or 16+16+16+16), not
    21+21+21+1 — a last batch of one row costs as many decode steps as a full one.

    ``extra_steps``: tokens a row may run past its max_tokens (a grammar's closing phase).
    """
    budget = memory_budget(loaded)
    batches: list[list[Job]] = []
    shape = _Shape(loaded, extra_steps)
    for job in group:
        grown = shape.with_job(job)
        if batches and len(batches[-1]) < max_batch and grown.cost() <= budget:
            batches[-1].append(job)
            shape = grown
        else:
            batches.append([job])
            shape = _Shape(loaded, extra_steps).with_job(job)
    if len(batches) < 2:
        return batches
    for count in range(len(batches), min(len(batches) + 2, len(group)) + 1):  # greedy's count is the least
        even = _even_split(group, count)
        if all(len(b) <= max_batch and batch_cost(b, loaded, extra_steps) <= budget for b in even):
            return even
    return batches


def _even_split(group: list[Job], count: int) -> list[list[Job]]:
    """``count`` consecutive parts whose sizes differ by at most one (the shorter prompts get the extra)."""
    size, extra = divmod(len(group), count)
    parts, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        parts.append(group[start:end])
        start = end
    return parts


def batch_cost(jobs: list[Job], loaded: LoadedModel, extra_steps: int = 0) -> int:
    """Peak bytes generate() needs for ``jobs`` as one batch (memory.MemoryShape.batch_bytes)."""
    shape = _Shape(loaded, extra_steps)
    for job in jobs:
        shape = shape.with_job(job)
    return shape.cost()


@dataclass(frozen=True)
class _Shape:
    """A batch's size so far: rows, the prompt prefix all its jobs share, longest prompt and answer."""

    loaded: LoadedModel
    extra_steps: int
    first: tuple[int, ...] = ()
    common: int = 0  # tokens every prompt so far starts with
    rows: int = 0
    jobs: int = 0
    shortest: int = 0
    longest: int = 0
    steps: int = 0
    reuse: bool = True

    def with_job(self, job: Job) -> _Shape:
        ids = job.prompt_ids
        if not self.jobs:
            return _Shape(self.loaded, self.extra_steps, tuple(ids), len(ids), _rows_per_job(job.options), 1,
                          len(ids), len(ids), job.max_new_tokens + self.extra_steps, job.options.num_beams == 1)
        common = common_prefix(self.first, ids, self.common)
        return _Shape(self.loaded, self.extra_steps, self.first, common, self.rows + _rows_per_job(job.options),
                      self.jobs + 1, min(self.shortest, len(ids)), max(self.longest, len(ids)),
                      max(self.steps, job.max_new_tokens + self.extra_steps), self.reuse)

    def cost(self) -> int:
        shared = reusable_length(self.common, self.shortest) if self.reuse and self.rows > 1 else 0
        return self.loaded.memory.batch_bytes(self.rows, shared, self.longest - shared, self.steps)
