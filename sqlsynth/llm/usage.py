"""Usage counters per endpoint and per model (node); the progress display is in progress.py.

``usage_summary()`` is what the engine writes into run_results.json; ``reset_usage()`` starts a run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import EndpointConfig
from .progress import BatchProgress, finish_progress  # noqa: F401  (the engine's entry points)


@dataclass
class Counters:
    rows: int = 0            # ai_query values computed (including duplicates and cache hits)
    cached: int = 0          # answered from the persistent cache
    shared: int = 0          # answered by an identical request already in flight / in the same batch
    calls: int = 0           # requests that reached a backend
    errors: int = 0          # rows that ended in an error
    retries: int = 0         # extra attempts (transient failures and invalid answers)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    # Rows answered by a call another model (or an earlier run) made: paying model → rows. Filled for
    # cache hits (the model whose call the calls log holds) and in-flight sharing (the sender).
    answered_by: dict[str, int] = field(default_factory=dict)

    def add(self, other: Counters) -> None:
        for name, value in asdict(other).items():
            if name == "answered_by":
                for payer, rows in value.items():
                    self.answered_by[payer] = self.answered_by.get(payer, 0) + rows
            else:
                setattr(self, name, getattr(self, name) + value)

    def paid_by(self, payer: str | None, rows: int = 1) -> None:
        name = payer or "(unknown)"
        self.answered_by[name] = self.answered_by.get(name, 0) + rows


@dataclass
class _State:
    started: float = field(default_factory=time.monotonic)
    endpoints: dict[str, Counters] = field(default_factory=dict)
    nodes: dict[str, Counters] = field(default_factory=dict)


_lock = threading.Lock()
_state = _State()


def cost_of(endpoint: EndpointConfig | None, prompt_tokens: int, completion_tokens: int) -> float:
    if endpoint is None:
        return 0.0
    factor = endpoint.batch_price_factor if endpoint.batch else 1.0  # batch mode: the provider's batch price
    return factor * (prompt_tokens * (endpoint.price_per_1k_input_tokens or 0.0)
                     + completion_tokens * (endpoint.price_per_1k_output_tokens or 0.0)) / 1000.0


def record(endpoint: str, node: str | None, delta: Counters) -> None:
    with _lock:
        _state.endpoints.setdefault(endpoint, Counters()).add(delta)
        _state.nodes.setdefault(node or "(query)", Counters()).add(delta)


def calls_made(endpoint: str) -> int:
    with _lock:
        counters = _state.endpoints.get(endpoint)
        return counters.calls if counters else 0


def node_row_errors(node: str) -> tuple[int, int]:
    """(ai_query values computed, values that ended in an error) by one model in this run."""
    with _lock:
        counters = _state.nodes.get(node)
        return (counters.rows, counters.errors) if counters else (0, 0)


def reset_usage() -> None:
    global _state
    with _lock:
        _state = _State()


def usage_summary() -> dict[str, Any]:
    """{"total": {...}, "endpoints": {name: {...}}, "models": {node: {...}}, "elapsed_s": ...}."""
    with _lock:
        total = Counters()
        for counters in _state.endpoints.values():
            total.add(counters)
        return {
            "total": _rounded(total),
            "endpoints": {k: _rounded(v) for k, v in _state.endpoints.items()},
            "models": {k: _rounded(v) for k, v in _state.nodes.items()},
            "elapsed_s": round(time.monotonic() - _state.started, 3),
        }


def _rounded(counters: Counters) -> dict[str, Any]:
    data = asdict(counters)
    data["cost"] = round(data["cost"], 6)
    return data

