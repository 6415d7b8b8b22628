"""Shared-prefix reuse: the KV cache of a prompt prefix every row of a batch starts with, computed once.

Every answer request of a pipeline step usually opens with the same long system message (rules,
reasoning scaffold). Its keys/values are the same for every row, so they are computed once per
model and prefix (kept in a small LRU on the loaded model, so later batches of the run reuse them)
and handed to ``generate()`` as ``past_key_values`` (stored once, not once per row: see
``shared_prefix_layer``). Rows are laid out as
``[prefix][padding][suffix]``: the padding sits between the shared part and each row's own part,
masked out, and position ids follow the attention mask, so every token keeps the position it has
without reuse and greedy answers stay the same.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

MIN_SHARED_TOKENS = 16  # below this a separate forward pass costs more than it saves
_KEPT_PREFIXES = 4  # e.g. the question and the answer prompt of one pipeline, plus a spare


@dataclass
class GenerationStats:
    """Where local generation time goes, summed over the process (bench/demo_pipeline.py prints it)."""

    prompt_tokens: int = 0  # prompt tokens of all rows
    reused_tokens: int = 0  # of those, served from a shared-prefix cache instead of prefill
    prefix_s: float = 0.0  # computing shared-prefix caches
    prefill_s: float = 0.0  # generate(): up to the first token's logits
    decode_s: float = 0.0  # generate(): the remaining tokens
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}


STATS = GenerationStats()


def shared_prefix_length(prompts: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one own token (it yields the logits).

    ``SQLSYNTH_PREFIX_REUSE=0`` turns reuse off (benchmarks compare both ways).
    """
    first, common = prompts[0], len(prompts[0])
    for prompt in prompts[1:]:
        common = common_prefix(first, prompt, common)
    return reusable_length(common, min(len(p) for p in prompts))


def common_prefix(first, other, limit: int) -> int:
    """How many leading tokens ``other`` shares with ``first``, at most ``limit``."""
    length, limit = 0, min(limit, len(other))
    while length < limit and first[length] == other[length]:
        length += 1
    return length


def reusable_length(common: int, shortest: int) -> int:
    """The part of a ``common`` prefix worth reusing: each row keeps an own token; 0 when short or off."""
    if os.environ.get("SQLSYNTH_PREFIX_REUSE", "1") == "0":
        return 0
    length = min(common, shortest - 1)
    return length if length >= MIN_SHARED_TOKENS else 0


class PrefixCaches:
    """Per loaded model: the KV tensors of the last few shared prefixes (batch dimension 1)."""

    def __init__(self) -> None:
        self._layers: OrderedDict[tuple[int, ...], list[tuple[Any, Any]] | None] = OrderedDict()

    def batch_cache(self, model, prefix: list[int], rows: int):
        """A fresh cache holding ``prefix`` for ``rows`` rows, or None when the model's cache is not a
        plain per-layer key/value cache (sliding windows, recurrent state)."""
        from transformers import DynamicCache

        layers = self._prefix_layers(model, prefix)
        if layers is None:
            return None
        cache = DynamicCache()
        cache.layers = [shared_prefix_layer(keys, values, rows) for keys, values in layers]
        return cache

    def _prefix_layers(self, model, prefix: list[int]):
        key = tuple(prefix)
        if key in self._layers:
            self._layers.move_to_end(key)
            return self._layers[key]
        started = time.perf_counter()
        layers = _compute_layers(model, prefix)
        STATS.add(prefix_s=time.perf_counter() - started)
        self._layers[key] = layers
        while len(self._layers) > _KEPT_PREFIXES:
            self._layers.popitem(last=False)
        return layers


def _compute_layers(model, prefix: list[int]):
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    ids = torch.tensor([prefix], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in cache.layers]


def shared_prefix_layer(keys, values, rows: int):
    """A cache layer storing the shared prefix once (batch 1) and only each row's own tokens.

    Attention still needs every row's full keys/values; they are concatenated on the fly, one layer
    at a time (DynamicLayer concatenates on every step too), so the prefix is never held ``rows``
    times over for the whole batch: for 64 rows of a ~370-token prefix that is ~1 GB less on SmolLM2.
    """
    return _layer_class()(keys, values, rows)


@functools.cache
def _layer_class():
    import torch
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):
        def __init__(self, keys, values, rows: int) -> None:
            super().__init__()
            self.prefix_keys, self.prefix_values, self.rows = keys, values, rows
            self.lazy_initialization(keys, values)  # own keys/values: empty until the first update

        def update(self, key_states, value_states, *args, **kwargs):
            self.keys = torch.cat([self.keys, key_states], dim=-2)
            self.values = torch.cat([self.values, value_states], dim=-2)
            return (torch.cat([self.prefix_keys.expand(self.rows, -1, -1, -1), self.keys], dim=-2),
                    torch.cat([self.prefix_values.expand(self.rows, -1, -1, -1), self.values], dim=-2))

        def get_seq_length(self) -> int:
            own = self.keys.shape[-2] if self.keys.dim() == 4 else 0  # empty 1-d before the first update
            return self.prefix_keys.shape[-2] + own

    return SharedPrefixLayer
