"""Usage counters per endpoint and per model (node), and the live progress display.

``usage_summary()`` is what the engine writes into run_results.json; ``reset_usage()`` starts a run.
"""

from __future__ import annotations

import atexit
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

@dataclass
class _Line:
    task: Any
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    cached: int = 0
    errors: int = 0
    tokens: int = 0
    calls: int = 0


class BatchProgress:
    """One rich progress line per ai_query model: done/total, cached, calls/s, tokens/s, errors, ETA.

    DuckDB hands ai_query 2,048 rows at a time, so *total* grows as batches arrive; the figures add up
    over every batch of the model. Shown only on a terminal; in logs/CI the usage summary in
    run_results.json says the same once.
    """

    _progress: Any = None
    _lines: dict[str, _Line] = {}
    _lock = threading.Lock()

    def __init__(self, node: str | None, endpoint: str, rows: int):
        self.line = self._open(f"{node or 'ai_query'} [{endpoint}]", rows)

    @classmethod
    def _open(cls, label: str, rows: int) -> _Line | None:
        from ..console import console

        if not console.is_terminal:
            return None
        with cls._lock:
            if cls._progress is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                cls._progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console)
                cls._progress.start()
            line = cls._lines.get(label)
            if line is None:
                line = cls._lines[label] = _Line(cls._progress.add_task(label, total=0, stats=""))
            total = cls._progress.tasks[line.task].total or 0
            cls._progress.update(line.task, total=total + rows)
            return line

    def advance(self, rows: int, cached: int = 0, errors: int = 0, tokens: int = 0, calls: int = 0) -> None:
        line = self.line
        if line is None:
            return
        with BatchProgress._lock:
            line.done += rows
            line.cached += cached
            line.errors += errors
            line.tokens += tokens
            line.calls += calls
            elapsed = max(time.monotonic() - line.started, 1e-6)
            stats = (f"cached {line.cached}  {line.calls / elapsed:.1f} calls/s  "
                     f"{line.tokens / elapsed:.0f} tok/s  errors {line.errors}")
            if BatchProgress._progress is not None:
                BatchProgress._progress.update(line.task, advance=rows, stats=stats)

    @classmethod
    def stop_all(cls) -> None:
        """End the live display (the engine calls it when a run ends; also at exit)."""
        with cls._lock:
            if cls._progress is not None:
                cls._progress.stop()
            cls._progress, cls._lines = None, {}


def finish_progress() -> None:
    BatchProgress.stop_all()


atexit.register(finish_progress)
