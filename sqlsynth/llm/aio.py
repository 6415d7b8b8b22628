"""One background asyncio event loop per process, shared by every endpoint and every query.

DuckDB calls ai_query from its own worker threads; each call hands its batch to this loop and waits.
One loop means one HTTP connection pool and one semaphore per endpoint, whatever the number of
queries, connections or DuckDB threads.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_closers: list[Callable[[], Awaitable[Any]]] = []


def loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or not _thread or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="sqlsynth-llm", daemon=True)
            _thread.start()
        return _loop


def submit(coro: Awaitable[T]) -> concurrent.futures.Future[T]:
    """Schedule a coroutine on the background loop; a thread-safe future of its result."""
    return asyncio.run_coroutine_threadsafe(coro, loop())  # type: ignore[arg-type]


def on_shutdown(closer: Callable[[], Awaitable[Any]]) -> None:
    """Register an async cleanup (closing HTTP sessions) run before the loop stops at exit."""
    _closers.append(closer)


def shutdown() -> None:
    global _loop, _thread
    with _lock:
        current, thread = _loop, _thread
        _loop = _thread = None
    if current is None:
        return

    async def close_all() -> None:
        for closer in _closers:
            try:
                await closer()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _closers.clear()

    try:
        asyncio.run_coroutine_threadsafe(close_all(), current).result(5)
    except Exception:  # noqa: BLE001
        pass
    current.call_soon_threadsafe(current.stop)
    if thread:
        thread.join(5)


atexit.register(shutdown)
