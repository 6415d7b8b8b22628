"""ai_query's hot path (issue 12 §1): throughput over the bound and client CPU per row, for sqlsynth
and for a raw-aiohttp client sending the same requests to the same server in the same run (the floor).

Two settings: 64 in flight at 0.2 s latency (bound 320 rows/s, 6,000 rows; target >= 0.9 of the
bound) and 256 in flight at 0.5 s (bound 512 rows/s, 10,000 rows; target >= 0.85). CPU per row is
marginal user+sys of the client process (a run of N rows minus a run of 500 rows, over N - 500; each
process's own figure from os.wait4): the interpreter start, imports and DuckDB setup cancel out.
Then a re-run of the first setting from the cache. Each client runs in its own process; the stub
server in another.

``--against DIR`` also runs the code of another checkout (``git worktree add /tmp/before <commit>``)
interleaved with this one, small and big run of each in turn, so a before/after comparison on a
shared box sees the same load; ``--rounds N`` repeats the interleaved rounds.

    .venv/bin/python bench/ai_query_throughput.py [--scale 1.0] [--against DIR] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ai_query_common import PYTHON, ROOT, make_project, node_seconds, query, sqlsynth, sqlsynth_cpu

from sqlsynth.testing.openai_server import ServerConfig, serve_in_subprocess

SETTINGS = ((64, 0.2, 6000), (256, 0.5, 10000))  # max_concurrency, latency, rows
SMALL = 500


def sqlsynth_run(url: str, concurrency: int, root: Path = ROOT):
    """rows -> (seconds the model took, CPU seconds of the whole client process)."""
    # bytecode compiled now, not by the first (small) run: that would lower the marginal figure
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(root / "sqlsynth")], check=True)

    def run(rows: int) -> tuple[float, float]:
        project = make_project(url, concurrency, max_retries=2)
        _, cpu = sqlsynth_cpu(project, "run", "-s", "answers", rows=rows, root=root)
        [(answered,)] = query(project, "select count(answer) from answers")
        if answered != rows:
            raise SystemExit(f"sqlsynth answered {answered} of {rows} rows")
        run.project = project  # type: ignore[attr-defined]
        return node_seconds(project, "answers"), cpu
    return run


def raw_run(url: str, concurrency: int):
    def run(rows: int) -> tuple[float, float]:
        proc = subprocess.Popen([PYTHON, __file__, "--raw-client", url, str(concurrency), str(rows)],
                                stdout=subprocess.PIPE, text=True)
        output = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit("the raw aiohttp client failed")
        return float(output.strip()), usage.ru_utime + usage.ru_stime
    return run


async def raw_client(url: str, concurrency: int, rows: int) -> float:
    """The floor: aiohttp, one session, a semaphore, the same request bodies as the bench model."""
    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": "Bearer sk-no-key-required", "Content-Type": "application/json"}

    async def one(session: aiohttp.ClientSession, i: int) -> str:
        body = {"model": "stub", "messages": [{"role": "user", "content": f"Write a question about topic {i}"}],
                "temperature": 0.7, "max_tokens": 64}
        async with limit, session.post(url + "/chat/completions", data=json.dumps(body).encode()) as response:
            return json.loads(await response.read())["choices"][0]["message"]["content"]

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, i) for i in range(rows)))
        return time.perf_counter() - started


def measure(clients: dict, rows: int, bound: float, rounds: int) -> None:
    """Each client's small and big run in turn (interleaved: the same load window for all)."""
    for round_ in range(rounds):
        for name, run in clients.items():
            _, small_cpu = run(SMALL)
            seconds, cpu = run(rows)
            per_row = (cpu - small_cpu) / (rows - SMALL) * 1000
            rate = rows / seconds
            print(f"  {name:<9} {rate:6.0f} rows/s = {rate / bound:.2f} of bound   CPU {per_row:.2f} ms/row "
                  f"(marginal, {SMALL} vs {rows} rows){f'   round {round_ + 1}' if rounds > 1 else ''}",
                  flush=True)
        print(f"  load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the rows of each setting")
    parser.add_argument("--against", type=Path, help="another checkout whose code runs interleaved (before/after)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per setting")
    parser.add_argument("--raw-client", nargs=3, metavar=("URL", "CONCURRENCY", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_client:
        url, concurrency, rows = args.raw_client
        print(asyncio.run(raw_client(url, int(concurrency), int(rows))))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for concurrency, latency, rows in SETTINGS:
        rows = max(int(rows * args.scale), 2 * SMALL)
        bound = concurrency / latency
        print(f"{rows} rows, {concurrency} in flight, {latency:g} s latency: bound {bound:.0f} rows/s")
        with serve_in_subprocess(ServerConfig(latency_s=latency)) as url:
            ours = sqlsynth_run(url, concurrency)
            clients = {"sqlsynth": ours}
            if args.against:
                clients["against"] = sqlsynth_run(url, concurrency, args.against.resolve())
            clients["aiohttp"] = raw_run(url, concurrency)
            measure(clients, rows, bound, args.rounds)
            if concurrency == SETTINGS[0][0]:
                project = ours.project  # type: ignore[attr-defined]
                rerun = sqlsynth(project, "run", "-s", "answers", rows=rows)
                plain = sqlsynth(project, "run", "-s", "plain", rows=rows)
                print(f"  re-run of {rows} cached rows: {rerun:.1f} s, the same model without ai_query "
                      f"{plain:.1f} s (whole processes)")
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
