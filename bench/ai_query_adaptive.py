"""Adaptive concurrency against a rate-limited endpoint (issue 12 §3).

The stub server allows ``--rate`` requests/s (token bucket, 1 s of burst) and answers 429 with a
Retry-After above it; sqlsynth starts at 64 allowed in flight (0.2 s latency would ask 320/s).
Prints requests sent per row (target <= 1.1) and the model's execution time over rows / rate
(target <= 1.2), through the real CLI. Usage: python bench/ai_query_adaptive.py [--rows 2000 --rate 100]
"""

from __future__ import annotations

import argparse

from ai_query_common import make_project, node_seconds, sqlsynth

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows, one ai_query each")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s the server allows")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, seconds")
    args = parser.parse_args()
    with serve_in_subprocess(ServerConfig(latency_s=args.latency, rate_limit=args.rate)) as url:
        project = make_project(url, concurrency=64, max_retries=10)
        sqlsynth(project, "run", "-s", "answers", rows=args.rows)
        requests = fetch_stats(url)["requests"]
    wall = node_seconds(project, "answers")
    ideal = args.rows / args.rate
    print(f"rows {args.rows}  rate {args.rate:g}/s  latency {args.latency:g}s  max_concurrency 64")
    print(f"requests/row {requests / args.rows:.3f} (target <= 1.1)   "
          f"wall {wall:.2f}s / ideal {ideal:.2f}s = {wall / ideal:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
