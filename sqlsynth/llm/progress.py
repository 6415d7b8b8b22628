"""Progress of running ai_query models: a live rich line per model on a terminal, and a plain line per
model every few seconds where stdout is not a terminal (log files, CI, nohup).

DuckDB hands ai_query 2,048 rows at a time, so a model's *total* grows as batches arrive; the figures
add up over every batch of the model.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INTERVAL_S = 10.0
INTERVAL_ENV = "SQLSYNTH_PROGRESS_INTERVAL"  # seconds between the plain progress lines


@dataclass
class _Line:
    label: str
    task: Any = None  # the rich task id (terminal only)
    started: float = field(default_factory=time.monotonic)
    total: int = 0
    done: int = 0
    cached: int = 0
    errors: int = 0
    tokens: int = 0
    calls: int = 0
    endpoint_status: Any = None  # the backend's status(): "limit 12/64, 30 waiting to retry" or ""

    def status(self) -> str:
        text = self.endpoint_status() if self.endpoint_status is not None else ""
        return f", {text}" if text else ""

    def rates(self) -> tuple[float, float, float]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return self.done / elapsed, self.calls / elapsed, self.tokens / elapsed

    def log_text(self) -> str:
        rows_s, _calls_s, tokens_s = self.rates()
        left = self.total - self.done
        eta = _duration(left / rows_s) if rows_s > 0 and left > 0 else "?" if left > 0 else "0s"
        return (f"{self.label}: {self.done:,}/{self.total:,} rows ({self.cached:,} cached), {rows_s:.1f} rows/s, "
                f"{self.calls:,} calls, {tokens_s:.0f} tok/s, {self.errors:,} errors{self.status()}, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def interval_s() -> float:
    try:
        return max(float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)), 0.1)
    except ValueError:
        return DEFAULT_INTERVAL_S


class _Ticker(threading.Thread):
    """Prints every unfinished line every interval_s() seconds (no terminal)."""

    def __init__(self, lines: dict[str, _Line], lock: threading.Lock):
        super().__init__(name="sqlsynth-progress", daemon=True)
        self.lines, self.lock, self.stopped = lines, lock, threading.Event()

    def run(self) -> None:
        from rich.markup import escape

        from ..console import console

        while not self.stopped.wait(interval_s()):
            with self.lock:
                texts = [line.log_text() for line in self.lines.values() if line.done < line.total]
            for text in texts:
                console.print(f"  [dim]progress[/dim] {escape(text)}")


class BatchProgress:
    """One progress line per ai_query model: done/total, cached, calls/s, tokens/s, errors, ETA."""

    _progress: Any = None   # rich Progress (terminal)
    _ticker: _Ticker | None = None  # plain lines (no terminal)
    _lines: dict[str, _Line] = {}
    _lock = threading.Lock()

    def __init__(self, node: str | None, endpoint: str, rows: int):
        self.line = self._open(f"{node or 'ai_query'} [{endpoint}]", rows)

    @classmethod
    def _open(cls, label: str, rows: int) -> _Line:
        from ..console import console

        with cls._lock:
            line = cls._lines.get(label)
            if line is None:
                line = cls._lines[label] = _Line(label)
                if console.is_terminal:
                    line.task = cls._rich().add_task(label, total=0, stats="")
                elif cls._ticker is None:
                    cls._ticker = _Ticker(cls._lines, cls._lock)
                    cls._ticker.start()
            line.total += rows
            if line.task is not None and cls._progress is not None:
                cls._progress.update(line.task, total=line.total)
            return line

    @classmethod
    def _rich(cls) -> Any:
        if cls._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from ..console import console

            cls._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console)
            cls._progress.start()
        return cls._progress

    def advance(self, rows: int, cached: int = 0, errors: int = 0, tokens: int = 0, calls: int = 0) -> None:
        line = self.line
        with BatchProgress._lock:
            line.done += rows
            line.cached += cached
            line.errors += errors
            line.tokens += tokens
            line.calls += calls
            if line.task is not None and BatchProgress._progress is not None:
                _rows_s, calls_s, tokens_s = line.rates()
                stats = (f"cached {line.cached}  {calls_s:.1f} calls/s  {tokens_s:.0f} tok/s  errors {line.errors}"
                         f"{line.status()}")
                BatchProgress._progress.update(line.task, advance=rows, stats=stats)

    @classmethod
    def stop_all(cls) -> None:
        """End the display (the engine calls it when a run ends; also at exit)."""
        with cls._lock:
            if cls._progress is not None:
                cls._progress.stop()
            ticker = cls._ticker
            cls._progress, cls._ticker, cls._lines = None, None, {}
        if ticker is not None:
            ticker.stopped.set()
            ticker.join(timeout=5)


def finish_progress() -> None:
    BatchProgress.stop_all()


atexit.register(finish_progress)
