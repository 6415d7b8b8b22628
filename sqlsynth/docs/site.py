"""Write target/docs/index.html: one file, data and code inlined, readable from disk with no network."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

from ..project import Project
from .catalog import Artifacts, DatabaseFacts, describe_node, node_tests, open_database
from .datasets import dataset_stats, truncated_texts
from .layout import NODE_H, NODE_W, layout
from .tokens import token_counter

STATIC = Path(__file__).parent / "static"
GRAPH_TYPES = ("source", "seed", "model", "test", "unit_test", "export")
CHECK_TYPES = ("test", "unit_test")  # hidden in the default view: a project has many


def _export_node(model: dict[str, Any], project: Project, count_tokens: Any, truncated: set[str]) -> dict[str, Any]:
    file = model["export_file"]
    path = Path(file) if Path(file).is_absolute() else project.dir / file
    return {"id": f"export.{model['name']}", "type": "export", "name": os.path.basename(file), "path": file,
            "model": model["id"], "description": f"the file model '{model['name']}' writes",
            "dataset": dataset_stats(path, count_tokens, truncated)}


def collect(project: Project, tokenizer: str | None = None) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able dict."""
    artifacts = Artifacts.read(project.target_dir)
    con, note = open_database(project)
    try:
        facts = DatabaseFacts(con, project)
        nodes = {uid: describe_node(n, project, facts, artifacts) for uid, n in project.nodes.items()}
        count_tokens, token_label = token_counter(tokenizer)
        truncated = truncated_texts(con)
    finally:
        if con is not None:
            con.close()
    tests = node_tests(project)
    for uid, details in nodes.items():
        details["tests"] = [{"id": t, "name": nodes[t]["name"], "status": (nodes[t]["run"] or {}).get("status")}
                            for t in tests.get(uid, [])]
    edges = [(parent, uid) for uid, n in project.nodes.items() for parent in n.depends_on if parent in nodes]
    for model in [d for d in nodes.values() if d["export_file"]]:
        export = _export_node(model, project, count_tokens, truncated)
        nodes[export["id"]] = export
        edges.append((model["id"], export["id"]))
    order = sorted(nodes, key=lambda uid: (GRAPH_TYPES.index(nodes[uid]["type"]), nodes[uid]["name"]))
    graph = _graph(order, edges, nodes)
    run = artifacts.run_results
    return {
        "project": project.name, "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "database": os.path.relpath(project.database_path, project.dir), "notes": [note] if note else [],
        "last_run": {"command": run.get("command"), "generated_at": (run.get("metadata") or {}).get("generated_at"),
                     "elapsed_time": run.get("elapsed_time"),
                     "usage": (run.get("usage") or {}).get("total")} if run else None,
        "graph": graph,
        "nodes": nodes, "token_label": token_label, "evaluation": None, "database_read": note is None,
    }


def _graph(order: list[str], edges: list[tuple[str, str]], nodes: dict[str, Any]) -> dict[str, Any]:
    """Two layouts: without data tests (the default view: a project has many) and with them."""
    untested = [uid for uid in order if nodes[uid]["type"] not in CHECK_TYPES]
    plain, width, height = layout(untested, edges)
    full, full_width, full_height = layout(order, edges)
    return {"node_width": NODE_W, "node_height": NODE_H, "edges": edges,
            "size": {"plain": [width, height], "full": [full_width, full_height]},
            "nodes": [{"id": uid, "type": nodes[uid]["type"], "name": nodes[uid]["name"],
                       "plain": plain.get(uid), "full": full[uid],
                       "status": _status(nodes, uid)} for uid in order]}


def _status(nodes: dict[str, Any], uid: str) -> str | None:
    """The last run's status; an export file shows its model's (the run that wrote it)."""
    node = nodes[uid]
    run = nodes[node["model"]].get("run") if node["type"] == "export" else node.get("run")
    return (run or {}).get("status")


def _script_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element (no '</script>' can end it early)."""
    return json.dumps(data, default=str).replace("</", "<\\/").replace("<!--", "<\\!--")


def render(data: dict[str, Any]) -> str:
    css = (STATIC / "site.css").read_text(encoding="utf-8")
    js = (STATIC / "site.js").read_text(encoding="utf-8")
    title = html.escape(f"{data['project']}: sqlsynth docs")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>"
            f"<style>{css}</style></head><body>"
            f"<script type=\"application/json\" id=\"docs-data\">{_script_json(data)}</script>"
            f"<script>{js}</script></body></html>\n")


def write_site(project: Project, out_dir: Path, data: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    os.replace(tmp, path)  # a browser reloading mid-write never sees half a page
    return path
