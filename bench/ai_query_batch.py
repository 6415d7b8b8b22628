"""Provider batch mode (issue 12 §4): one batch per model, through the real CLI.

A table model with one ai_query per row against the stub server's batch API (`batch: true`), then an
unchanged re-run. Prints the batches and lines the server received (target: 1 batch, rows lines;
DuckDB hands ai_query 2,048 rows at a time, so a batch per chunk would be rows / 2,048), the model's
time and the whole command's, and the re-run's. Usage: python bench/ai_query_batch.py [--rows 20000]
"""

from __future__ import annotations

import argparse

from ai_query_common import make_project, node_seconds, sqlsynth, usage

from sqlsynth.testing.openai_server import ServerConfig, fetch_stats, serve_in_subprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows, one ai_query each")
    parser.add_argument("--poll", type=float, default=0.5, help="batch_poll_s")
    args = parser.parse_args()
    with serve_in_subprocess(ServerConfig()) as url:
        project = make_project(url, batch="true", batch_poll_s=args.poll)
        wall = sqlsynth(project, "run", "-s", "answers", rows=args.rows)
        model = node_seconds(project, "answers")
        stats = fetch_stats(url)
        rerun = sqlsynth(project, "run", "-s", "answers", rows=args.rows)
        rerun_model = node_seconds(project, "answers")
        again = fetch_stats(url)
    counts = usage(project)["models"]["answers"]
    print(f"rows {args.rows}  batch_poll_s {args.poll:g}")
    print(f"first run: {stats['batches']} batch(es), {stats['batch_lines']} lines, {stats['requests']} live "
          f"requests (target 1 / {args.rows} / 0; a batch per 2,048-row chunk would be "
          f"{-(-args.rows // 2048)}); model {model:.2f}s, command {wall:.2f}s")
    print(f"re-run: {again['batches'] - stats['batches']} new batches, {counts['cached']} cached rows, "
          f"model {rerun_model:.2f}s, command {rerun:.2f}s")


if __name__ == "__main__":
    main()
