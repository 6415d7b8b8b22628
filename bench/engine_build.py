"""Engine benchmark: a 50-model synthetic project (seeds of 100k rows, views and tables).

Prints: `sqlsynth build` wall time and peak memory, a second `sqlsynth run` on the unchanged project,
CLI start-up (`sqlsynth --help`), and the per-node overhead of `sqlsynth run` beyond DuckDB's own
time for the same statements executed directly (side by side, with the ratio).

    python bench/engine_build.py [--models 50] [--rows 100000]

With --spark (needs pyspark and Java 17) it instead builds the same project on DuckDB and on
`--target spark` (local[2]) for each --models count, whole process each time, and prints both side by
side with the ratio and the marginal cost per model: the point is how the cost grows, not who wins.

    python bench/engine_build.py --spark --models 10,50
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SQLSYNTH = [sys.executable, "-m", "sqlsynth"]


def make_project(root: Path, n_models: int, rows: int) -> None:
    (root / "seeds").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "project.yml").write_text("name: bench\nthreads: 4\n")
    rng = random.Random(0)
    for seed in ("events", "users"):
        with (root / "seeds" / f"{seed}.csv").open("w") as f:
            f.write("id,user_id,kind,amount\n")
            for i in range(rows):
                f.write(f"{i},{rng.randrange(5000)},k{rng.randrange(20)},{rng.random() * 100:.2f}\n")
    names = []
    for i in range(n_models):
        parent = rng.choice(names[-10:]) if names and i % 5 else rng.choice(["events", "users"])
        materialized = "table" if i % 3 == 0 else "view"
        body = {
            0: f"select id, user_id, kind, amount * 1.01 as amount from {{{{ ref('{parent}') }}}}",
            1: f"select user_id, kind, sum(amount) as amount, count(*) as id from {{{{ ref('{parent}') }}}} group by all",
            2: f"select * from {{{{ ref('{parent}') }}}} where amount > 10",
        }[i % 3]
        name = f"m{i:02d}"
        (root / "models" / f"{name}.sql").write_text(f"{{{{ config(materialized='{materialized}') }}}}\n{body}\n")
        names.append(name)


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def direct_duckdb_time(root: Path) -> tuple[float, int]:
    """The same model statements, run directly with duckdb (no sqlsynth), on a copy of the seeded DB."""
    import duckdb

    results = json.loads((root / "target" / "run_results.json").read_text())
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    db = root / "target" / "direct.duckdb"
    shutil.copy(root / "target" / "bench.duckdb", db)
    con = duckdb.connect(str(db))
    statements = []
    for r in results["results"]:
        node = manifest["nodes"][r["unique_id"]]
        kind = "table" if node["config"]["materialized"] == "table" else "view"
        statements.append(f'create or replace {kind} "main"."{node["name"]}" as {node["compiled_code"]}')
    start = time.perf_counter()
    for sql in statements:
        con.execute(sql)
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed, len(statements)


SPARK_TARGET = "targets:\n  spark:\n    type: spark\n    remote: local[2]\n"


def engine_times(models: int, rows: int) -> dict[str, tuple[float, float]]:
    """engine → (build s, second run s), whole process, for one project built by both engines."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        make_project(root, models, rows)
        with (root / "project.yml").open("a") as handle:
            handle.write(SPARK_TARGET)
        times = {}
        for engine, flags in (("duckdb", []), ("spark", ["--target", "spark"])):
            build_s, _ = timed(SQLSYNTH + ["build", *flags], root)
            rerun_s, _ = timed(SQLSYNTH + ["run", *flags], root)
            times[engine] = (build_s, rerun_s)
    return times


def compare_spark(model_counts: list[int], rows: int) -> None:
    print(f"2 seeds x {rows:,} rows; whole process (start-up, project load, JVM start on Spark)")
    print(f"{'models':>6}  {'step':<16}{'duckdb s':>9}{'spark s':>9}{'spark/duckdb':>14}")
    results = {}
    for models in model_counts:
        results[models] = times = engine_times(models, rows)
        for index, step in enumerate(("build", "second run")):
            duck, spark = times["duckdb"][index], times["spark"][index]
            print(f"{models:>6}  {step:<16}{duck:9.2f}{spark:9.2f}{spark / duck:13.1f}x")
    if len(model_counts) > 1:
        low, high = min(model_counts), max(model_counts)
        for engine in ("duckdb", "spark"):
            per_model = (results[high][engine][0] - results[low][engine][0]) / (high - low)
            print(f"marginal build cost per model, {engine}: {per_model * 1000:6.0f} ms "
                  f"(fixed part ~{results[low][engine][0] - per_model * low:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="50", help="model count; with --spark a comma-separated list")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--spark", action="store_true", help="compare DuckDB with --target spark (local[2])")
    args = parser.parse_args()
    counts = [int(n) for n in args.models.split(",")]
    if args.spark:
        compare_spark(counts, args.rows)
        return
    args.models = counts[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        make_project(root, args.models, args.rows)
        build_s, build_rss = timed(SQLSYNTH + ["build"], root)
        rerun_s, _ = timed(SQLSYNTH + ["run", "--threads", "1"], root)
        node_sum = sum(r["execution_time"] for r in json.loads((root / "target/run_results.json").read_text())["results"])
        direct_s, n = direct_duckdb_time(root)
        help_s = statistics.median(timed(SQLSYNTH + ["--help"], root)[0] for _ in range(5))
        console_script = Path(sys.executable).parent / "sqlsynth"
        script_s = statistics.median(timed([str(console_script), "--help"], root)[0] for _ in range(5)) \
            if console_script.exists() else float("nan")
    overhead_ms = (rerun_s - direct_s) / n * 1000
    print(f"project: {args.models} models, 2 seeds x {args.rows:,} rows")
    print(f"sqlsynth build (seed+run, 4 threads):   {build_s:7.2f} s wall, peak RSS {build_rss / 1024:.0f} MiB")
    print(f"second sqlsynth run (1 thread, whole process): {rerun_s:7.2f} s")
    print(f"  of which inside nodes:                {node_sum:7.2f} s")
    print(f"same {n} statements run directly in duckdb: {direct_s:7.2f} s")
    print(f"ratio sqlsynth run / direct duckdb:     {rerun_s / direct_s:7.2f}x")
    print(f"per-node overhead (whole process, incl. start-up): {overhead_ms:6.1f} ms  (target < 20 ms)")
    print(f"CLI start-up `python -m sqlsynth --help`: {help_s * 1000:6.0f} ms; `sqlsynth --help`: {script_s * 1000:6.0f} ms (target < 500 ms)")


if __name__ == "__main__":
    main()
