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

CPU_BATCH_BYTES = 384 << 20  # the default CPU budget per batch (bench/RESULTS.md, issue 14)
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
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # musl and others: nothing to trim with
        return None
