"""Benchmark 4 (issue 3): kill -9 the run half way, run again → no row that completed before the kill
is requested again, and the final table equals an uninterrupted run's.

"Completed before the kill" = committed to sqlsynth.cache (rows commit every 0.2 s as they complete;
at most the rows in flight and the last 0.2 s of answers are lost).

    .venv/bin/python bench/ai_query_resume.py [--rows 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time

from ai_query_common import PYTHON, ROOT, make_project, query, sqlsynth

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess


def start(project, rows: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.Popen([PYTHON, "-m", "sqlsynth", "--project-dir", str(project), "run", "-s", "answers",
                             "--vars", f"{{rows: {rows}}}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    rows = parser.parse_args().rows
    with serve_in_subprocess(ServerConfig(latency_s=0.2)) as url:
        reference = make_project(url, 64)
        sqlsynth(reference, "run", "-s", "answers", rows=rows)
        expected = query(reference, "select i, answer from answers order by i")
        ok_before = fetch_stats(url)["statuses"].get("200", 0)

        project = make_project(url, 64)
        proc = start(project, rows)
        while fetch_stats(url)["statuses"].get("200", 0) - ok_before < rows // 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = fetch_stats(url)["statuses"].get("200", 0) - ok_before
        cached = query(project, "select request from sqlsynth.cache")
        committed = {json.loads(r[0])[-1]["content"] for r in cached}
        before = fetch_stats(url)["prompts"]

        resume = sqlsynth(project, "run", "-s", "answers", rows=rows)
        after = fetch_stats(url)["prompts"]
        again = [p for p in committed if after.get(p, 0) > before.get(p, 0)]
        resent = sum(after.get(p, 0) - before.get(p, 0) for p in after)
        final = query(project, "select i, answer from answers order by i")
    print(f"rows={rows}; killed after {killed_at} answers were sent by the server; "
          f"{len(committed)} rows were committed to the cache")
    print(f"lost in flight (answered but not committed): {killed_at - len(committed)}")
    print(f"resume run: {resume:.2f}s, {resent} requests; committed rows requested again: {len(again)}")
    print(f"final table equals the uninterrupted run's: {final == expected} ({len(final)} rows)")


if __name__ == "__main__":
    main()
