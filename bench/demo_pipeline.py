"""The bank-assistant demo, timed: a fresh `sqlsynth build` (no database, no cache), then a second
one with nothing changed. Prints wall times, rows, LLM calls and tokens (from run_results.json and
the ai_query call log) — the figures of the "Bank pipeline" section of bench/RESULTS.md.

    python bench/demo_pipeline.py                 # the repository root project, default vars
    python bench/demo_pipeline.py --keep          # do not delete target/ first (re-run only)
    python bench/demo_pipeline.py --vars '{n_questions: 2}'

Deletes the project's DuckDB file (and so its ai_query cache) unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(project: Path, extra: list[str]) -> tuple[float, int, dict]:
    started = time.perf_counter()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "sqlsynth", "--project-dir", str(project), "build", *extra],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    results = json.loads((project / "target" / "run_results.json").read_text())
    if proc.returncode:
        print(proc.stdout[-4000:])
    return wall, proc.returncode, results


def count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.exists() else 0


def call_log(project: Path) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    try:
        return con.execute("""
            select node, count(*), sum(prompt_tokens), sum(completion_tokens),
                   round(avg(latency_ms) / 1000, 2), count(*) filter (where status <> 'ok')
            from sqlsynth.calls group by node order by node""").fetchall()
    finally:
        con.close()


def usage_line(results: dict) -> str:
    total = (results.get("usage") or {}).get("total") or {}
    return (f"calls={total.get('calls', 0)} cached={total.get('cached', 0)} "
            f"prompt_tokens={total.get('prompt_tokens', 0)} completion_tokens={total.get('completion_tokens', 0)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--keep", action="store_true", help="keep target/ (and the cache)")
    parser.add_argument("--vars", default=None)
    args = parser.parse_args()
    project = args.project_dir.resolve()
    extra = ["--vars", args.vars] if args.vars else []
    if not args.keep:
        for path in (project / "target").glob("bank_assistant.duckdb*"):
            path.unlink()
        shutil.rmtree(project / "target" / "exports", ignore_errors=True)

    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} (other processes share the CPU)")
    first_wall, rc1, first = build(project, extra)
    exported = project / "target" / "exports" / "chat.jsonl"
    rows = count_lines(exported)
    print(f"first build:  {first_wall:7.1f} s  rc={rc1}  chat.jsonl lines={rows}  {usage_line(first)}")
    for node, calls, tin, tout, latency, failed in call_log(project):
        print(f"  {node:<28} calls={calls:<4} prompt_tokens={tin:<7} completion_tokens={tout:<6} "
              f"avg_latency={latency}s failed={failed}")
    second_wall, rc2, second = build(project, extra)
    print(f"second build: {second_wall:7.1f} s  rc={rc2}  {usage_line(second)}")
    print(f"load at the end={os.getloadavg()[0]:.1f}")
    return 0 if rc1 == rc2 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
