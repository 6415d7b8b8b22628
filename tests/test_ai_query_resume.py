"""kill -9 in the middle of an ai_query statement: rows committed before the kill are never requested
again, and the resumed table equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from llm_support import ai, stub

ROWS = 240
SQL = f"select i, ai_query('t', 'q' || i, responseFormat := 'STRUCT<content: STRING>') as r from range({ROWS}) t(i)"

CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from llm_support import AIConnection, project
    db = AIConnection(project({url!r}, max_concurrency=8), {path!r})
    db.con.execute("create table out as " + db.compile({sql!r}))
""")


def test_kill_9_mid_statement_keeps_committed_rows(tmp_path: Path):
    path = tmp_path / "p.duckdb"
    with stub(latency_s=0.1) as server:  # 80 rows/s: half the rows take 1.5 s, several commits
        code = CHILD.format(tests=str(Path(__file__).parent), url=server.url, path=str(path), sql=SQL)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen([sys.executable, "-c", code], env=env)
        deadline = time.monotonic() + 60
        while server.stats.statuses[200] < ROWS // 2 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        # requests the child had in flight still finish on the server: let them, so they are not
        # counted as requests of the re-run below
        last, settle = -1, time.monotonic() + 5
        while sum(server.stats.statuses.values()) != last and time.monotonic() < settle:
            last = sum(server.stats.statuses.values())  # counted when the (delayed) answer is sent
            time.sleep(0.3)
        answered = server.stats.statuses[200]
        assert answered < ROWS, "the child finished before it could be killed"

        con = duckdb.connect(str(path))
        committed = {json.loads(r[0])[-1]["content"] for r in con.execute("select request from sqlsynth.cache").fetchall()}
        assert "out" not in {r[0] for r in con.execute("show tables").fetchall()}
        con.close()
        # Some rows were committed and some answers were lost with the process. How many are lost (in
        # flight + the last half second) depends on the box's load: bench/ai_query_resume.py measures it.
        assert 0 < len(committed) < answered
        before = dict(server.stats.prompts)

        with ai(server, path) as db:
            db.con.execute("create table out as " + db.compile(SQL))
            resumed = db.con.execute("select i, r from out order by i").fetchall()
        again = [p for p in committed if server.stats.prompts[p] > before.get(p, 0)]
        assert again == []
        assert sum(server.stats.prompts.values()) - sum(before.values()) == ROWS - len(committed)

    with stub(latency_s=0.0) as fresh, ai(fresh, tmp_path / "ref.duckdb") as db:
        reference = db.con.execute(db.compile(SQL) + " order by i").fetchall()
    # The stub's answers depend only on the request, so an uninterrupted run gives the same table.
    assert resumed == reference
