"""Usage counters per endpoint and per model (node), and the live progress display.

``usage_summary()`` is what the engine writes into run_results.json; ``reset_usage()`` starts a run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import EndpointConfig


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

    def add(self, other: Counters) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


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
    return (prompt_tokens * (endpoint.price_per_1k_input_tokens or 0.0)
            + completion_tokens * (endpoint.price_per_1k_output_tokens or 0.0)) / 1000.0


def record(endpoint: str, node: str | None, delta: Counters) -> None:
    with _lock:
        _state.endpoints.setdefault(endpoint, Counters()).add(delta)
        _state.nodes.setdefault(node or "(query)", Counters()).add(delta)


def calls_made(endpoint: str) -> int:
    with _lock:
        counters = _state.endpoints.get(endpoint)
        return counters.calls if counters else 0


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


# --------------------------------------------------------------------------- live progress

class BatchProgress:
    """One rich progress line per ai_query model: done/total, cached, calls/s, tokens/s, errors, ETA.

    DuckDB hands ai_query 2,048 rows at a time, so *total* grows as batches arrive. Shown only on a
    terminal; in logs/CI the usage summary says the same once.
    """

    _progress: Any = None
    _tasks: dict[str, Any] = {}
    _lock = threading.Lock()

    def __init__(self, node: str | None, endpoint: str, rows: int):
        self.label = f"{node or 'ai_query'} [{endpoint}]"
        self.started = time.monotonic()
        self.done = self.cached = self.errors = self.tokens = self.calls = 0
        self._task = self._open(rows)

    def _open(self, rows: int) -> Any:
        from ..console import console

        if not console.is_terminal:
            return None
        with BatchProgress._lock:
            if BatchProgress._progress is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                BatchProgress._progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console,
                    transient=False)
                BatchProgress._progress.start()
            task = BatchProgress._tasks.get(self.label)
            if task is None:
                task = BatchProgress._tasks[self.label] = BatchProgress._progress.add_task(
                    self.label, total=0, stats="")
            BatchProgress._progress.update(task, total=(BatchProgress._progress.tasks[task].total or 0) + rows)
            return task

    def advance(self, rows: int, cached: int = 0, errors: int = 0, tokens: int = 0, calls: int = 0) -> None:
        self.done += rows
        self.cached += cached
        self.errors += errors
        self.tokens += tokens
        self.calls += calls
        if self._task is None or not rows:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        stats = (f"cached {self.cached}  {self.calls / elapsed:.1f} calls/s  "
                 f"{self.tokens / elapsed:.0f} tok/s  errors {self.errors}")
        BatchProgress._progress.update(self._task, advance=rows, stats=stats)

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            if cls._progress is not None:
                cls._progress.stop()
            cls._progress, cls._tasks = None, {}
