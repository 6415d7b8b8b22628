"""llm/runtime.py: the process settings ai_query changes while it runs are scoped and restored."""

from __future__ import annotations

import gc
import threading

import duckdb

from sqlsynth.llm.runtime import YOUNG_THRESHOLD, ai_query_statement, quiet_gc


def test_quiet_gc_freezes_and_restores_when_the_last_user_leaves():
    before = gc.get_threshold()
    with quiet_gc():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        with quiet_gc():  # a second batch (another DuckDB thread) at the same time
            pass
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])  # still in use
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_quiet_gc_restores_after_an_exception():
    before = gc.get_threshold()
    try:
        with quiet_gc():
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _threads(con) -> int:
    return con.execute("select current_setting('threads')").fetchall()[0][0]


def test_ai_query_statement_only_for_ai_query_statements_and_restored():
    con = duckdb.connect()
    con.execute("set threads = 3")
    with ai_query_statement(con, con.cursor(), calls_ai_query=False):
        assert _threads(con) == 3
    outer = con.cursor()
    gc_before = gc.get_threshold()
    with ai_query_statement(con, outer, calls_ai_query=True):
        assert _threads(con) == 1
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD  # quiet for the whole statement
        inner_done = threading.Event()

        def other_model() -> None:  # a second ai_query model on another runner thread
            cur = con.cursor()
            with ai_query_statement(con, cur, calls_ai_query=True):
                assert _threads(cur) == 1
            inner_done.set()
        worker = threading.Thread(target=other_model)
        worker.start()
        worker.join()
        assert inner_done.is_set() and _threads(con) == 1  # the outer statement still runs
    assert _threads(con) == 3
    assert gc.get_threshold() == gc_before and gc.get_freeze_count() == 0


def test_ai_query_statement_restores_after_a_failing_statement():
    con = duckdb.connect()
    con.execute("set threads = 2")
    try:
        with ai_query_statement(con, con.cursor(), calls_ai_query=True):
            con.execute("select * from no_such_table")
    except duckdb.CatalogException:
        pass
    assert _threads(con) == 2


def test_quiet_gc_leaves_a_host_applications_own_freeze_alone():
    gc.freeze()
    try:
        with quiet_gc():
            pass
        assert gc.get_freeze_count() > 0  # still frozen (some may have been freed by reference counting)
    finally:
        gc.unfreeze()
