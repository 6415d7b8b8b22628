"""Benchmark 2 (issue 3): 20% of requests answered 429 or 500 and 5% malformed → every row completes
through retries; prints the extra wall time against a clean run of the same model.

    .venv/bin/python bench/ai_query_faults.py [--rows 2000]
"""

from __future__ import annotations

import argparse

from ai_query_common import make_project, node_seconds, query, sqlsynth

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess

LATENCY, CONCURRENCY = 0.2, 64


def run(rows: int, **faults: float) -> tuple[float, dict, tuple]:
    with serve_in_subprocess(ServerConfig(latency_s=LATENCY, seed=7, **faults)) as url:
        project = make_project(url, CONCURRENCY)
        sqlsynth(project, "run", "-s", "answers", rows=rows)
        stats = fetch_stats(url)
        [counts] = query(project, "select count(*), count(answer) from answers")
        [errors] = query(project, "select count(*) filter (status <> 'ok') from sqlsynth.calls")
    return node_seconds(project, "answers"), stats, (*counts, *errors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    rows = parser.parse_args().rows
    clean, _, _ = run(rows)
    faulty, stats, (count, answered, errors) = run(rows, rate_429=0.10, rate_500=0.10, rate_malformed=0.05)
    print(f"rows={rows} latency={LATENCY}s max_concurrency={CONCURRENCY}")
    print(f"clean run: {clean:.2f}s")
    print(f"faulty run (10% 429, 10% 500, 5% malformed): {faulty:.2f}s; requests at server "
          f"{stats['requests']} for {rows} rows, faults {stats['faults']}")
    print(f"rows in table {count}, answered {answered}, rows failed {errors}")
    print(f"extra wall time: {faulty - clean:+.2f}s ({faulty / clean:.2f}x the clean run)")


if __name__ == "__main__":
    main()
