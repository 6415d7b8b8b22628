"""Benchmark 1 (issue 3): ai_query throughput against the 64 / 0.2 s = 320 rows/s bound, and against
the naive approach (a ThreadPool of 2 calling the client row by row), measured in the same run.

    .venv/bin/python bench/ai_query_throughput.py [--rows 5000] [--naive-rows 120]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from ai_query_common import make_project, node_seconds, query, sqlsynth

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess

LATENCY, CONCURRENCY = 0.2, 64


def naive_rows_per_s(url: str, rows: int) -> float:
    """What a notebook does: the sync client, a pool of 2 threads, one row per call."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="x", max_retries=0)

    def one(i: int) -> str:
        response = client.chat.completions.create(
            model="stub", messages=[{"role": "user", "content": f"Write a question about topic {i}"}],
            temperature=0.7, max_tokens=64)
        return response.choices[0].message.content

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(rows)))
    client.close()
    return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--naive-rows", type=int, default=120)
    args = parser.parse_args()
    bound = CONCURRENCY / LATENCY
    with serve_in_subprocess(ServerConfig(latency_s=LATENCY)) as url:
        project = make_project(url, CONCURRENCY)
        wall = sqlsynth(project, "run", "-s", "answers", rows=args.rows)
        node = node_seconds(project, "answers")
        requests = fetch_stats(url)["requests"]
        [(count, answered)] = query(project, "select count(*), count(answer) from answers")
        naive = naive_rows_per_s(url, args.naive_rows)
    ours_node, ours_wall = args.rows / node, args.rows / wall
    print(f"rows={args.rows} latency={LATENCY}s max_concurrency={CONCURRENCY} bound={bound:.0f} rows/s")
    print(f"requests at server: {requests}; rows in table: {count}, answered: {answered}")
    print(f"ai_query model (node time {node:.2f}s): {ours_node:.0f} rows/s = {ours_node / bound:.2f} of bound")
    print(f"whole `sqlsynth run` process ({wall:.2f}s, startup included): {ours_wall:.0f} rows/s "
          f"= {ours_wall / bound:.2f} of bound")
    print(f"naive ThreadPool(2) sync client ({args.naive_rows} rows): {naive:.1f} rows/s "
          f"→ ai_query is {ours_node / naive:.0f}x faster")


if __name__ == "__main__":
    main()
