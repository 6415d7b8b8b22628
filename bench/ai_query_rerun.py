"""Benchmark 3 (issue 3): re-running the unchanged ai_query model sends 0 requests, and takes within 2x
the wall time of the same model with the ai_query column removed.

    .venv/bin/python bench/ai_query_rerun.py [--rows 5000]
"""

from __future__ import annotations

import argparse

from ai_query_common import make_project, node_seconds, sqlsynth

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    rows = parser.parse_args().rows
    with serve_in_subprocess(ServerConfig(latency_s=0.2)) as url:
        project = make_project(url, 64)
        first = sqlsynth(project, "run", "-s", "answers", rows=rows)
        before = fetch_stats(url)["requests"]
        rerun_wall = sqlsynth(project, "run", "-s", "answers", rows=rows)
        rerun_node = node_seconds(project, "answers")
        after = fetch_stats(url)["requests"]
        plain_wall = sqlsynth(project, "run", "-s", "plain", rows=rows)
        plain_node = node_seconds(project, "plain")
    print(f"rows={rows}; first run {first:.2f}s ({before} requests)")
    print(f"re-run: {after - before} requests reached the server")
    print(f"`sqlsynth run` wall: re-run {rerun_wall:.2f}s vs plain model {plain_wall:.2f}s "
          f"→ {rerun_wall / plain_wall:.2f}x")
    print(f"node time only: re-run {rerun_node:.3f}s vs plain {plain_node:.3f}s → {rerun_node / plain_node:.1f}x "
          f"({(rerun_node - plain_node) / rows * 1e6:.0f} µs per cached row)")


if __name__ == "__main__":
    main()
