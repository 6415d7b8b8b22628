"""Cutting requests into batches: one job per request, batches sized by memory and batch_size."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..types import LLMResult
from .loading import LoadedModel
from .options import GenerationOptions

CPU_MAX_BATCH = 64  # on 2-4 cores larger batches stop paying off (bench/local_generation.py)
GPU_MAX_BATCH = 256
_MEMORY_FRACTION = {"cpu": 0.25, "cuda": 0.7, "mps": 0.5}


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


def cut(group: list[Job], max_batch: int, loaded: LoadedModel) -> list[list[Job]]:
    budget = memory_budget(loaded.device)
    batches: list[list[Job]] = []
    current: list[Job] = []
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


def memory_budget(device: str) -> int:
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
