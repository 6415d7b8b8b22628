"""Process settings while ai_query answers rows: the garbage collector and DuckDB's worker threads.

Both were found with per-thread CPU accounting of the throughput bench (bench/RESULTS.md, hot path):

- The cyclic garbage collector. Every request in flight holds a few hundred container objects
  (aiohttp request/response, futures, tasks) for the whole round trip, so with the default gen-0
  threshold (700 allocations) they all survive young collections, get promoted, and trigger full
  collections that walk every object of the process (DuckDB, pyarrow, pydantic, sqlglot...): up to a
  third of the wall time of a 10,000-row run stalled in the GC, with the GIL held. While a batch
  runs, the objects that existed before it are frozen (``gc.freeze``: no longer walked, still freed
  by reference counting) and young collections are rarer; both are undone when the last batch ends.
- DuckDB's idle worker spin. A statement is executed by the thread that calls ``execute`` *and* by
  DuckDB's worker threads. When a worker picks up the task that calls ai_query, the calling thread
  loops in the Python client's ``CompletePendingQuery`` (no task for it: it retakes the GIL, checks
  for signals, asks again), ~0.5 ms of CPU per row and a GIL hand-off forced on the event loop
  every switch interval. Which thread wins the task is a race, hence runs that cost 2-4 x the CPU of
  others. With ``threads = 1`` while an ai_query statement runs, the calling thread runs it and
  nothing spins; an ai_query statement's source is one task anyway (one row group).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

YOUNG_THRESHOLD = 50_000  # gen-0 allocations between collections while a batch runs (default 700)

_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None
_gc_froze = False  # whether we froze (a host application that froze objects itself keeps them frozen)
_thread_users: dict[int, list[int]] = {}  # id(database) -> [ai_query statements running, threads before]


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Freeze the objects that exist now and collect young ones rarely, until the last user leaves."""
    global _gc_users, _gc_saved, _gc_froze
    with _lock:
        _gc_users += 1
        if _gc_users == 1:
            _gc_saved = gc.get_threshold()
            _gc_froze = gc.get_freeze_count() == 0
            if _gc_froze:
                gc.freeze()
            gc.set_threshold(max(YOUNG_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
    try:
        yield
    finally:
        with _lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                if _gc_froze:
                    gc.unfreeze()


@contextmanager
def ai_query_statement(database: object, cursor: Any, calls_ai_query: bool) -> Iterator[None]:
    """Around a statement that calls ai_query: DuckDB ``threads = 1`` and the quiet GC for the whole
    statement (not only while each 2,048-row batch runs: restoring the GC between two batches let a
    full collection fall on the gap, when no request is in flight). Other statements pass through."""
    if not calls_ai_query:
        yield
        return
    with one_duckdb_thread(database, cursor), quiet_gc():
        yield


@contextmanager
def one_duckdb_thread(database: object, cursor: Any) -> Iterator[None]:
    """DuckDB's ``threads = 1`` until the last ai_query statement on ``database`` ends, then the
    setting as it was (set through this thread's ``cursor``: the setting is the database's)."""
    key = id(database)
    with _lock:
        entry = _thread_users.get(key)
        if entry is None:
            before = cursor.execute("select current_setting('threads')").fetchall()[0][0]
            entry = _thread_users[key] = [0, int(before)]
            cursor.execute("set threads = 1")
        entry[0] += 1
    try:
        yield
    finally:
        with _lock:
            entry[0] -= 1
            if entry[0] == 0:
                del _thread_users[key]
                cursor.execute(f"set threads = {entry[1]}")
