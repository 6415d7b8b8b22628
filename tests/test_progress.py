"""Progress without a terminal and the end-of-run LLM line, through the real CLI and the local server."""

from __future__ import annotations

import json
import re

from conftest import run_cli
from llm_support import stub

SLOW_MODEL = """{{ config(materialized='table') }}
select i, ai_query('teacher', 'question ' || i) as answer from range(12) t(i)"""


def _project(make_project, url: str):
    return make_project({
        "project.yml": "name: proj\nendpoints:\n  teacher:\n    provider: openai\n"
                       f"    base_url: {url}\n    model: stub\n    max_concurrency: 2\n"
                       "    price_per_1k_input_tokens: 0.5\n    price_per_1k_output_tokens: 1.5\n",
        "models/slow.sql": SLOW_MODEL,
    })


def test_non_tty_run_prints_progress_lines_and_the_llm_line(make_project):
    with stub(latency_s=0.4) as server:  # 12 calls, 2 at a time: about 2.4 s
        root = _project(make_project, server.url)
        env = {"SQLSYNTH_PROGRESS_INTERVAL": "0.5"}
        first = run_cli("run", "--project-dir", str(root), env=env)
        results = json.loads((root / "target" / "run_results.json").read_text())
        second = run_cli("run", "--project-dir", str(root), env=env)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    progress = re.findall(r"progress slow \[teacher\]: (\d+)/12 rows \(\d+ cached\), [\d.]+ rows/s, (\d+) calls, "
                          r"\d+ tok/s, 0 errors, ETA \S+", output)
    assert len(progress) >= 2, output
    assert all(int(done) < 12 for done, _calls in progress)
    usage = results["usage"]["total"]
    assert usage["calls"] == 12 and usage["cached"] == 0 and usage["prompt_tokens"] > 0
    line = re.search(r"LLM: 12 calls, 0 cached, 0 shared, tokens ([\d,]+) in / ([\d,]+) out, "
                     r"est\. cost \$([\d.]+), 0 retries, 0 errors", output)
    assert line, output
    assert int(line.group(1).replace(",", "")) == usage["prompt_tokens"]
    assert int(line.group(2).replace(",", "")) == usage["completion_tokens"]
    assert abs(float(line.group(3)) - usage["cost"]) < 1e-4 and usage["cost"] > 0
    # The re-run is answered from the cache: no calls, no progress needed, the line says so.
    again = second.stdout + second.stderr
    assert second.returncode == 0, again
    assert "LLM: 0 calls, 12 cached" in again and "progress slow" not in again
