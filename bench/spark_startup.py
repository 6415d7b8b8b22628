"""In-process Spark start-up (``remote: local[N]``), phase by phase (issue 11).

Each measurement is a fresh Python process, as each ``sqlsynth`` command is:

- ``open``: ``open_session`` (JVM launch through spark-submit, SparkContext, session, first query);
- ``metastore``: the first catalog calls (Hive client, embedded Derby, DataNucleus) as the runner makes them;
- ``ctas``: a first table written and read back;
- ``command``: the whole ``sqlsynth build --target spark`` of a one-seed, one-table, one-test project.

The first run of each variant creates its metastore (reported as ``fresh``); the others reopen it, as every
later command does. Variants add ``spark_conf`` (a JSON object) to the target, runs are interleaved so that
the box's load falls on all of them alike; the table shows medians. ``--baseline DIR`` adds the same runs
with the sqlsynth of another checkout (before/after a change).
Usage: python bench/spark_startup.py [--runs 4] [--baseline DIR] [--variant NAME='{"spark.x": "y"}' ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("import", "open", "metastore", "ctas", "stop")


def child(state_dir: str, conf: str) -> None:
    """One start-up, timed phase by phase; prints a JSON object."""
    marks, cpu, start = {}, {}, time.perf_counter()

    def mark(name: str) -> None:
        marks[name] = time.perf_counter() - start - sum(marks.values())
        if name in ("open", "metastore", "ctas"):  # the JVM's CPU seconds in this phase
            cpu[f"{name} cpu"] = _cpu_seconds(spark.sparkContext._gateway.proc.pid) - sum(cpu.values())

    from sqlsynth.config import parse_project_config
    from sqlsynth.targets.spark_database import ensure_schema
    from sqlsynth.targets.spark_session import open_session

    mark("import")
    target = parse_project_config({"name": "b", "targets": {"spark": {
        "type": "spark", "remote": "local[2]", "spark_conf": json.loads(conf)}}}).targets["spark"]
    spark = open_session("spark", target, Path(state_dir))
    mark("open")
    ensure_schema(spark, "main")
    spark.catalog.tableExists("`main`.`t`")
    mark("metastore")
    spark.sql("drop table if exists main.t")
    spark.sql("create table main.t using parquet as select id, id % 3 as k from range(100)")
    assert spark.sql("select k, count(*) from main.t group by k").count() == 3
    mark("ctas")
    spark.stop()
    mark("stop")
    print(json.dumps({**marks, **cpu, "jvm cpu": sum(cpu.values())}))


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process so far: on a loaded box a steadier figure than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_project(conf: dict[str, str]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sqlsynth-bench-sparkstart-"))
    for sub in ("models", "seeds"):
        (folder / sub).mkdir()
    lines = "".join(f"      {key}: '{value}'\n" for key, value in conf.items())
    (folder / "project.yml").write_text("name: bench\ntargets:\n  spark:\n    type: spark\n    remote: local[2]\n"
                                        + ("    spark_conf:\n" + lines if lines else ""))
    (folder / "seeds" / "numbers.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(10)))
    (folder / "models" / "doubled.sql").write_text("select id, id * 2 as twice from {{ ref('numbers') }}\n")
    (folder / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: doubled\n    columns:\n      - name: id\n        tests: [not_null]\n")
    return folder


def env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1"}


def run_phases(tree: Path, state_dir: Path, conf: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(state_dir), json.dumps(conf)], env=env(tree),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_command(tree: Path, project: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "sqlsynth", "build", "--target", "spark"], cwd=project, env=env(tree),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"build failed in {project}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stderr


def load() -> str:
    return os.getloadavg().__repr__()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--baseline", type=Path, help="another checkout's root: its sqlsynth, no extra conf")
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON spark_conf to add")
    args = parser.parse_args()
    variants = ({"baseline": {}} if args.baseline else {}) | {"current": {}} \
        | {v.split("=", 1)[0]: json.loads(v.split("=", 1)[1]) for v in args.variant}
    trees = {name: args.baseline if name == "baseline" else ROOT for name in variants}
    states = {name: Path(tempfile.mkdtemp(prefix="sqlsynth-bench-state-")) for name in variants}
    projects = {name: make_project(conf) for name, conf in variants.items()}
    try:
        report(variants, trees, states, projects, args.runs)
    finally:  # the metastores and projects are this run's alone
        for folder in (*states.values(), *projects.values()):
            shutil.rmtree(folder, ignore_errors=True)


def report(variants: dict, trees: dict, states: dict, projects: dict, runs: int) -> None:
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    print(f"load before: {load()}", flush=True)
    for run in range(runs):
        for name, conf in variants.items():
            phases = run_phases(trees[name], states[name], conf)
            phases["command"], stderr = run_command(trees[name], projects[name])
            phases["warnings"] = float(stderr.count("WARNING"))
            results[name].append(phases)
            print(f"run {run} {name}: " + " ".join(f"{k} {v:.2f}" for k, v in phases.items()) + f"  load {load()}",
                  flush=True)
    columns = (*PHASES, "open cpu", "metastore cpu", "ctas cpu", "jvm cpu", "command")
    print("\n| variant | " + " | ".join(columns) + " |\n|" + " --- |" * (len(columns) + 1))
    for name, rows in results.items():
        later = rows[1:] or rows
        cells = [f"{statistics.median(r[c] for r in later):.2f}" for c in columns]
        print(f"| {name} (fresh: open {rows[0]['open']:.2f}, command {rows[0]['command']:.2f}) | "
              + " | ".join(cells) + " |")
    print(f"load after: {load()}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
