"""Which model paid: requests shared by two models (in flight or through the cache) are attributed to the
model whose call answered them, in run_results.json, through the real CLI and the local server."""

from __future__ import annotations

import json

from conftest import run_cli
from llm_support import stub

ASK = "select i, ai_query('teacher', 'question ' || i) as answer from range(6) t(i)"


def _project(make_project, url: str, models: dict[str, str]):
    return make_project({
        "project.yml": "name: proj\nendpoints:\n  teacher:\n    provider: openai\n"
                       f"    base_url: {url}\n    model: stub\n",
        **models,
    })


def _usage(root) -> dict:
    return json.loads((root / "target" / "run_results.json").read_text())["usage"]["models"]


def test_cache_hits_name_the_model_whose_call_answered_them(make_project):
    with stub() as server:
        root = _project(make_project, server.url, {
            "models/first.sql": f"{{{{ config(materialized='table') }}}}\n{ASK}",
            "models/second.sql": f"{{{{ config(materialized='table') }}}}\n-- depends_on: {{{{ ref('first') }}}}\n{ASK}",
        })
        done = run_cli("run", "--project-dir", str(root))
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.requests == 6
    models = _usage(root)
    assert models["first"]["calls"] == 6 and models["first"]["answered_by"] == {}
    assert models["second"]["calls"] == 0 and models["second"]["cached"] == 6
    assert models["second"]["answered_by"] == {"first": 6}


def test_in_flight_sharing_names_the_sender(make_project):
    with stub(latency_s=0.5) as server:  # both models run at once: one sends, the other waits
        root = _project(make_project, server.url, {
            "models/left.sql": f"{{{{ config(materialized='table') }}}}\n{ASK}",
            "models/right.sql": f"{{{{ config(materialized='table') }}}}\n{ASK}",
        })
        done = run_cli("run", "--project-dir", str(root), "--threads", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.requests == 6
    models = _usage(root)
    payer, other = sorted(models, key=lambda name: -models[name]["calls"])
    assert models[payer]["calls"] == 6 and models[other]["calls"] == 0
    assert sum(models[other]["answered_by"].values()) == 6
    assert set(models[other]["answered_by"]) == {payer}
