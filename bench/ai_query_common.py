"""Shared setup of the ai_query benchmarks: a stub server in its own process and a throwaway project.

The project has two table models over the same rows: ``answers`` (one ai_query per row) and ``plain``
(the same SELECT without the ai_query column). Runs go through the real CLI (`python -m sqlsynth`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

ANSWERS = """{{ config(materialized='table') }}
select i, ai_query('teacher', 'Write a question about topic ' || i,
                   modelParameters := {'temperature': 0.7, 'max_tokens': 64}) as answer
from range({{ var('rows') }}) t(i)
"""
PLAIN = """{{ config(materialized='table') }}
select i, 'Write a question about topic ' || i as prompt
from range({{ var('rows') }}) t(i)
"""


def make_project(url: str, concurrency: int = 64, **endpoint: object) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sqlsynth-bench-"))
    (folder / "models").mkdir()
    extra = "".join(f"    {k}: {v}\n" for k, v in endpoint.items())
    (folder / "project.yml").write_text(
        "name: bench\n"
        "endpoints:\n"
        "  teacher:\n"
        "    provider: openai\n"
        f"    base_url: {url}\n"
        "    model: stub\n"
        f"    max_concurrency: {concurrency}\n" + extra)
    (folder / "models" / "answers.sql").write_text(ANSWERS)
    (folder / "models" / "plain.sql").write_text(PLAIN)
    return folder


def sqlsynth(project: Path, *args: str, rows: int, check: bool = True) -> float:
    """Run the CLI; wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-m", "sqlsynth", "--project-dir", str(project), *args,
                           "--vars", f"{{rows: {rows}}}"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise SystemExit(f"sqlsynth {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def sqlsynth_cpu(project: Path, *args: str, rows: int, root: Path = ROOT) -> tuple[float, float]:
    """Run the CLI with the code of checkout ``root``; (wall seconds, user+sys CPU seconds of that process
    alone: os.wait4, so another child reaped meanwhile, a stub server say, is not counted)."""
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-m", "sqlsynth", "--project-dir", str(project), *args,
                             "--vars", f"{{rows: {rows}}}"], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"sqlsynth {' '.join(args)} failed:\n{output.decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def query(project: Path, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(project / "target" / "bench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def node_seconds(project: Path, name: str) -> float:
    """execution_time of one node in the last run (from target/run_results.json)."""
    import json

    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return next(r["execution_time"] for r in results if r["unique_id"].endswith("." + name))


def usage(project: Path) -> dict:
    import json

    return json.loads((project / "target" / "run_results.json").read_text()).get("usage", {})
