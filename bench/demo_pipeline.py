"""The bank-assistant demo, timed: a fresh `sqlsynth build` (no database, no cache), then a second
one with nothing changed. Prints wall times, rows, LLM calls and tokens (from run_results.json and
the ai_query call log) — the figures of the "Bank pipeline" section of bench/RESULTS.md.

    python bench/demo_pipeline.py                 # the repository root project, default vars
    python bench/demo_pipeline.py --keep          # do not delete target/ first (re-run only)
    python bench/demo_pipeline.py --vars '{n_questions: 2}'
    python bench/demo_pipeline.py --no-prefix-reuse   # the local backend without shared-prefix reuse
    python bench/demo_pipeline.py --compare       # both, fresh each time, side by side with ratios

Deletes the project's DuckDB file (and so its ai_query cache) unless --keep is given. Also prints
where the local model's time went (shared-prefix caches, prefill, decode; sqlsynth.llm.local.prefix.STATS
of the build process), the build process's CPU seconds and peak RSS (its own, per build), and the rows
the quality gates kept and rejected.
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


# Runs the CLI in a child process, then writes the local backend's timing totals next to run_results.json.
_CHILD = """
import json, resource, sys
from pathlib import Path
from sqlsynth.cli import main
try:
    main(sys.argv[2:], prog_name="sqlsynth")
finally:
    from sqlsynth.llm.local.prefix import STATS
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(sys.argv[1]).write_text(json.dumps({**STATS.as_dict(), "peak_rss_mb": usage.ru_maxrss / 1024,
                                             "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def build(project: Path, extra: list[str], env_extra: dict[str, str]) -> tuple[float, int, dict, dict]:
    stats_file = project / "target" / "local_generation_stats.json"
    stats_file.unlink(missing_ok=True)
    started = time.perf_counter()
    env = {**os.environ, "NO_COLOR": "1", **env_extra}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(stats_file), "--project-dir", str(project),
                           "build", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    results = json.loads((project / "target" / "run_results.json").read_text())
    if proc.returncode:
        print(proc.stdout[-4000:])
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return wall, proc.returncode, results, stats


def split_line(stats: dict) -> str:
    if not stats.get("batches"):
        return "local model: no generation"
    share = stats["reused_tokens"] / max(stats["prompt_tokens"], 1)
    return (f"local model: {stats['batches']} batches, prefix caches {stats['prefix_s']:.1f} s, "
            f"prefill {stats['prefill_s']:.1f} s, decode {stats['decode_s']:.1f} s; "
            f"{stats['reused_tokens']} of {stats['prompt_tokens']} prompt tokens ({share:.0%}) from shared prefixes")


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


def quality_line(project: Path) -> str:
    import duckdb

    con = duckdb.connect(str(project / "target" / "bank_assistant.duckdb"), read_only=True)
    try:
        rows = con.execute("""
            select case when not kept then 'rejected ' || reason
                        when answer_source = 'decline_answer' then 'kept with decline_answer' else 'kept' end,
                   count(*)
            from response_quality group by all order by 2 desc""").fetchall()
    except duckdb.Error:
        return "quality gates: (no response_quality table)"
    finally:
        con.close()
    return "quality gates: " + ", ".join(f"{reason} {n}" for reason, n in rows)


def fresh_run(project: Path, extra: list[str], env_extra: dict[str, str], label: str) -> dict:
    """Delete the database (and cache), build, build again unchanged; print and return the figures."""
    for path in (project / "target").glob("bank_assistant.duckdb*"):
        path.unlink()
    shutil.rmtree(project / "target" / "exports", ignore_errors=True)
    return keep_run(project, extra, env_extra, label)


def keep_run(project: Path, extra: list[str], env_extra: dict[str, str], label: str) -> dict:
    print(f"[{label}] cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} (other processes share the CPU)")
    first_wall, rc1, first, stats = build(project, extra, env_extra)
    rows = count_lines(project / "target" / "exports" / "chat.jsonl")
    print(f"first build:  {first_wall:7.1f} s  rc={rc1}  chat.jsonl lines={rows}  {usage_line(first)}")
    print(f"  CPU {stats.get('cpu_s', 0):.0f} s, peak RSS {stats.get('peak_rss_mb', 0):.0f} MB; {split_line(stats)}")
    for node, calls, tin, tout, latency, failed in call_log(project):
        print(f"  {node:<28} calls={calls:<4} prompt_tokens={tin:<7} completion_tokens={tout:<6} "
              f"avg_latency={latency}s failed={failed}")
    print(f"  {quality_line(project)}")
    second_wall, rc2, second, _ = build(project, extra, env_extra)
    print(f"second build: {second_wall:7.1f} s  rc={rc2}  {usage_line(second)}")
    print(f"load at the end={os.getloadavg()[0]:.1f}")
    return {"wall_s": first_wall, "cpu_s": stats.get("cpu_s", 0.0), "peak_rss_mb": stats.get("peak_rss_mb", 0.0),
            "prefill_s": stats.get("prefill_s", 0.0), "decode_s": stats.get("decode_s", 0.0),
            "ok": rc1 == rc2 == 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--keep", action="store_true", help="keep target/ (and the cache)")
    parser.add_argument("--vars", default=None)
    parser.add_argument("--no-prefix-reuse", action="store_true", help="SQLSYNTH_PREFIX_REUSE=0 for the builds")
    parser.add_argument("--compare", action="store_true", help="fresh runs without, then with prefix reuse")
    args = parser.parse_args()
    project = args.project_dir.resolve()
    extra = ["--vars", args.vars] if args.vars else []
    if args.compare:
        before = fresh_run(project, extra, {"SQLSYNTH_PREFIX_REUSE": "0"}, "prefix reuse off")
        after = fresh_run(project, extra, {}, "prefix reuse on")
        print("\nfigure            reuse off   reuse on   on/off")
        for key in ("wall_s", "cpu_s", "prefill_s", "decode_s", "peak_rss_mb"):
            print(f"{key:<16} {before[key]:10.1f} {after[key]:10.1f} {after[key] / max(before[key], 1e-9):8.2f}")
        return 0 if before["ok"] and after["ok"] else 1
    env_extra = {"SQLSYNTH_PREFIX_REUSE": "0"} if args.no_prefix_reuse else {}
    label = "prefix reuse off" if args.no_prefix_reuse else "prefix reuse on"
    run = keep_run if args.keep else fresh_run
    return 0 if run(project, extra, env_extra, label)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
