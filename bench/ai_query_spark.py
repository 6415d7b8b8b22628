"""Staged ai_query on Spark local[2] (issue 11): rows/s over the bound P x c / latency.

2,000 rows, server latency 0.2 s, P = 2 tasks with c = 32 requests in flight each (the endpoint's
max_concurrency 64 split over ai_query_partitions 2): the bound is 320 rows/s. Two ways to run Spark:

- ``connect``: a Spark Connect server (``--master local[P]``) started once by this script and warmed up
  by one small build, as a deployment's cluster is already running; the command connects to it;
- ``local``: ``remote: local[P]``, Spark started inside the command (JVM start-up and the Derby
  metastore included in every command).

For each: the whole ``sqlsynth build --target spark`` command (seed load + the ai_query model), the
model's node time, what the server saw (requests, most in flight at once, time with requests in flight),
then a re-run (all cached).
Usage: python bench/ai_query_spark.py [--rows 2000,10000 --latency 0.2 --partitions 2 --per-task 32 --mode both]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess
from sqlsynth.testing.spark_connect import spark_connect_server

ROOT = Path(__file__).resolve().parents[1]
MODEL = """{{ config(materialized='table') }}
select id, ai_query('teacher', '%s ' || id,
                    modelParameters := {'temperature': 0.7, 'max_tokens': 64}) as answer
from {{ ref('numbers') }}
"""


def make_project(url: str, rows: int, partitions: int, per_task: int, remote: str,
                 prompt: str = "Write a question about topic") -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sqlsynth-bench-spark-"))
    (folder / "models").mkdir()
    (folder / "seeds").mkdir()
    spool = f"    ai_spool: {folder / 'target' / 'ai_spool'}\n" if remote.startswith("sc://") else ""
    (folder / "project.yml").write_text(
        "name: bench\nendpoints:\n  teacher:\n    provider: openai\n"
        f"    base_url: {url}\n    model: stub\n    max_concurrency: {partitions * per_task}\n"
        f"targets:\n  spark:\n    type: spark\n    remote: {remote}\n"
        f"    ai_query_partitions: {partitions}\n{spool}")
    (folder / "models" / "answers.sql").write_text(MODEL % prompt)
    with open(folder / "seeds" / "numbers.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id"])
        writer.writerows([i] for i in range(rows))
    return folder


def build(project: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sqlsynth", "--project-dir", str(project), "build", "--target",
                           "spark"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sqlsynth build failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def node_seconds(project: Path, name: str) -> float:
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return next(r["execution_time"] for r in results if r["unique_id"].endswith("." + name))


def measure(label: str, remote: str, args: argparse.Namespace) -> None:
    for rows in (int(n) for n in args.rows.split(",")):
        measure_rows(label, remote, argparse.Namespace(**{**vars(args), "rows": rows}))


def measure_rows(label: str, remote: str, args: argparse.Namespace) -> None:
    bound = args.partitions * args.per_task / args.latency
    with serve_in_subprocess(ServerConfig(latency_s=args.latency)) as url:
        project = make_project(url, args.rows, args.partitions, args.per_task, remote)
        whole = build(project)
        node = node_seconds(project, "answers")
        stats = fetch_stats(url)
        again = build(project)
        cached_node = node_seconds(project, "answers")
        resent = fetch_stats(url)["requests"] - stats["requests"]
    busy = stats["busy_s"]
    print(f"{label}: rows {args.rows}  latency {args.latency:g}s  P {args.partitions}  c {args.per_task}  "
          f"bound {bound:.0f} rows/s")
    print(f"  server      {stats['requests']} requests, at most {stats['max_in_flight']} in flight, "
          f"{busy:.2f}s with requests in flight = {args.rows / busy:.1f} rows/s = {args.rows / busy / bound:.2f} "
          f"of the bound (mean {stats['requests'] * args.latency / busy:.1f} in flight)")
    print(f"  model node  {node:6.2f}s  {args.rows / node:6.1f} rows/s  = {args.rows / node / bound:.2f} of the bound")
    print(f"  whole build {whole:6.2f}s  {args.rows / whole:6.1f} rows/s  = {args.rows / whole / bound:.2f} "
          "of the bound (seed load included)")
    print(f"  re-run      {again:6.2f}s  (model node {cached_node:.2f}s, {resent} requests sent)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000", help="row counts, comma-separated (e.g. 2000,10000,20000): "
                        "the fixed cost per command shows as the ratio rising with the rows")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--partitions", type=int, default=2, help="P: tasks calling at once")
    parser.add_argument("--per-task", type=int, default=32, help="c: requests in flight per task")
    parser.add_argument("--mode", choices=("connect", "local", "both"), default="both")
    args = parser.parse_args()
    if args.mode in ("connect", "both"):
        with spark_connect_server(args.partitions) as remote:
            with serve_in_subprocess(ServerConfig(latency_s=args.latency)) as url:
                started = time.perf_counter()  # a running cluster has run jobs before: warm it up once
                build(make_project(url, 64, args.partitions, args.per_task, remote, prompt="Warm-up"))
                print(f"warm-up build on the fresh Connect server: {time.perf_counter() - started:.2f}s")
            measure(f"Spark Connect server ({remote}, local[{args.partitions}], started once)", remote, args)
    if args.mode in ("local", "both"):
        measure(f"in-process local[{args.partitions}] (JVM start-up in the command)", f"local[{args.partitions}]",
                args)


if __name__ == "__main__":
    main()
