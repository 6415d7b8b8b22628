"""How much memory one ``generate()`` batch may take, what a batch costs, and giving freed memory back.

On CPU the budget is a fixed number of bytes per batch (``CPU_BATCH_BYTES``), not a share of free RAM:
a share of a big machine's free RAM let 64-row batches take ~1.5 GB on top of the ~1 GB model
process (bench/RESULTS.md, issue 14). On GPUs free device memory is what there is to use, so there it
stays a fraction of it.

A batch's cost is counted from the model's shape (``MemoryShape``): the KV cache at the last step,
one layer's keys/values concatenated for attention, and the prefill's activations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from dataclasses import dataclass

CPU_BATCH_BYTES = 200 << 20  # the default CPU budget per batch: the demo peaks at 1.47 GB, 195 s (bench/RESULTS.md, issue 14)
CPU_MIN_BATCH_BYTES = 128 << 20  # the floor when other models already take memory
BATCH_MB_ENV = "SQLSYNTH_LOCAL_BATCH_MB"  # overrides CPU_BATCH_BYTES (in MiB), e.g. on a big machine
_DEVICE_FRACTION = {"cuda": 0.7, "mps": 0.5}


@dataclass(frozen=True)
class MemoryShape:
    """Per-token byte counts of one model (from its config and dtype)."""

    kv_bytes_per_token: int  # keys + values of every layer, one token of one row
    attention_bytes_per_token: int  # one layer's keys/values as attention sees them (GQA heads repeated)
    score_bytes: int  # one attention score of every head (scores and their softmax)
    act_bytes_per_token: int  # one layer's MLP and hidden activations during prefill, one token of one row

    @classmethod
    def of(cls, config, dtype) -> MemoryShape:
        import torch

        size = torch.finfo(dtype).bits // 8
        layers = getattr(config, "num_hidden_layers", 24)
        heads = getattr(config, "num_attention_heads", 16)
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        hidden = config.hidden_size
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        inter = getattr(config, "intermediate_size", None) or 4 * hidden
        return cls(kv_bytes_per_token=2 * layers * kv_heads * head_dim * size,
                   attention_bytes_per_token=2 * (heads + kv_heads) * head_dim * size,
                   score_bytes=2 * heads * size,
                   act_bytes_per_token=(3 * inter + 6 * hidden) * size)  # gated MLP: gate, up, product

    def batch_bytes(self, rows: int, shared: int, own: int, steps: int) -> int:
        """Peak bytes of a batch: ``rows`` rows of ``own`` prompt tokens each (padded to the longest)
        after a ``shared`` prefix stored once, generating up to ``steps`` tokens.

        The sum of the KV cache at the last step and the prefill's largest transients (one layer's
        attention over the whole width, its MLP): an upper bound that came within 10% of the measured
        growth of the process for the bank demo's question and answer batches (glibc's heap holds
        freed KV blocks for a while, so the sum, not the max, is what RSS shows).
        """
        width = shared + own
        cache = self.kv_bytes_per_token * (shared + rows * (own + steps))
        attention = rows * width * (self.attention_bytes_per_token + own * self.score_bytes)
        prefill = rows * own * self.act_bytes_per_token
        return cache + attention + prefill


def batch_budget(device: str) -> int:
    """Bytes one generate() batch may use on ``device``."""
    kind = device.split(":")[0]
    if kind in _DEVICE_FRACTION:
        return int(_free_memory(device) * _DEVICE_FRACTION[kind])
    override = os.environ.get(BATCH_MB_ENV, "").strip()
    return int(float(override) * (1 << 20)) if override else CPU_BATCH_BYTES


def _free_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free
    try:  # mps shares the machine's RAM
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def release_freed_memory() -> None:
    """Hand memory freed by a finished batch back to the OS (glibc keeps it otherwise).

    torch's CPU tensors come from malloc; the KV cache's many few-MB blocks are freed into glibc's
    heaps and arenas, which kept ~0.2-0.5 GB per finished batch resident (measured). ``malloc_trim``
    returns the free pages of every arena. A no-op where the C library has no malloc_trim.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):  # musl and others: nothing to trim with
        libc.malloc_trim(0)


@functools.cache
def _libc():
    """glibc (or the platform's C library) on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_MADV_DONTNEED = 4


def release_weight_pages(model_dir: str) -> int:
    """Drop the model's memory-mapped weights from RSS while it is idle; bytes released.

    transformers maps safetensors files and computes on those pages (0.5 GB for SmolLM2-135M in fp32).
    Between calls they only weigh on the process's RSS, e.g. while MiniLM embeds the answers: dropped,
    they come back from the page cache on the next forward (~0.1 s of page faults). Only mappings with
    no written (copied-on-write) page are dropped, so nothing but clean copies of the file is ever discarded.
    """
    libc = _libc()
    if libc is None:
        return 0
    released = 0
    for start, end in _clean_weight_mappings(os.path.realpath(model_dir)):
        if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED) == 0:
            released += end - start
    return released


def _clean_weight_mappings(directory: str) -> list[tuple[int, int]]:
    """(start, end) of the mappings of ``directory``'s .safetensors files with no page written to.

    A write to a private file mapping copies the page into anonymous memory (smaps' "Anonymous");
    Private_Dirty also counts file pages not yet flushed to disk, which are safe to drop."""
    mappings: list[list] = []
    current: list | None = None
    try:
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                fields = line.split()
                if not fields[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
                    path = fields[5] if len(fields) > 5 else ""
                    current = None
                    if path.startswith(directory + os.sep) and path.endswith(".safetensors"):
                        start, end = (int(x, 16) for x in fields[0].split("-"))
                        current = [start, end, True]
                        mappings.append(current)
                elif current is not None and fields[0] == "Anonymous:" and int(fields[1]):
                    current[2] = False  # a page written (copied on write): dropping it would lose the write
    except OSError:
        return []
    return [(start, end) for start, end, clean in mappings if clean]
