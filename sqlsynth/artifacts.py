"""target/manifest.json and target/run_results.json, in the spirit (and key names) of dbt's."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .masking import mask_data
from .node_types import RELATION_TYPES, NodeType
from .project import Node, Project
from .render import INVOCATION_ID
from .state import checksums, macro_dependencies


def _metadata(project: Project) -> dict[str, Any]:
    return {"sqlsynth_version": __version__, "project_name": project.name, "invocation_id": INVOCATION_ID,
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "database": str(project.database_path)}


def ls_json(project: Project, node: Node, keys: list[str]) -> dict[str, Any]:
    """One node as `dbt ls --output json` prints it, with only the given keys (of cli_options.LS_JSON_KEYS)."""
    full = {
        "name": node.name, "resource_type": node.resource_type,
        "package_name": node.unique_id.split(".")[1], "original_file_path": node.original_file_path,
        "unique_id": node.unique_id, "alias": node.alias if node.resource_type in RELATION_TYPES else None,
        "depends_on": _depends_on(project, node), "config": node.config, "tags": node.tags,
        "source_name": node.source_name,
    }
    return {key: full[key] for key in keys}


def _depends_on(project: Project, node: Node) -> dict[str, list[str]]:
    return {"macros": macro_dependencies(project, node), "nodes": list(node.depends_on)}


def _node_json(project: Project, node: Node) -> dict[str, Any]:
    return {
        "unique_id": node.unique_id, "resource_type": node.resource_type, "name": node.name,
        "original_file_path": node.original_file_path, "fqn": node.fqn, "schema": node.schema,
        "alias": node.alias,
        "relation_name": str(node.relation) if node.resource_type not in (NodeType.TEST, NodeType.UNIT_TEST) else None,
        "config": node.config, "tags": node.tags, "description": node.description,
        "columns": {name: asdict(col) for name, col in node.columns.items()},
        "depends_on": _depends_on(project, node), "refs": node.refs,
        "sources": [list(s) for s in node.sources], "raw_code": node.raw_code,
        "compiled_code": node.compiled_code, "test_metadata": node.test_metadata,
        "attached_node": node.attached_node, "column_name": node.column_name,
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(mask_data(data), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a failed write() names no file: name it (disk full, read-only target/)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        exc.filename = exc.filename or str(path)
        raise


def write_manifest(project: Project, target_dir: Path) -> Path:
    sums = checksums(project)  # what `--state DIR` with state:modified compares against

    def entry(node: Node) -> dict[str, Any]:
        return {**_node_json(project, node), "checksum": {"name": "sha256", "checksum": sums[node.unique_id]}}

    nodes = {uid: entry(n) for uid, n in project.nodes.items() if n.resource_type != NodeType.SOURCE}
    sources = {uid: entry(n) for uid, n in project.nodes.items() if n.resource_type == NodeType.SOURCE}
    parent_map = {uid: n.depends_on for uid, n in project.nodes.items()}
    child_map: dict[str, list[str]] = {uid: [] for uid in project.nodes}
    for uid, parents in parent_map.items():
        for parent in parents:
            child_map.setdefault(parent, []).append(uid)
    data = {"metadata": _metadata(project), "nodes": nodes, "sources": sources,
            "macros": sorted(project.renderer.macros), "parent_map": parent_map, "child_map": child_map,
            "udfs": [{"name": u.name, "parameters": list(u.parameters), "returns": u.returns, "path": u.path,
                      "vectorized": u.vectorized} for u in project.udfs]}
    path = target_dir / "manifest.json"
    _write(path, data)
    return path


def write_run_results(project: Project, target_dir: Path, command: str, results: list, elapsed: float,
                      args: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    rows = []
    for r in results:
        rows.append({
            "unique_id": r.unique_id, "status": r.status, "message": r.message,
            "execution_time": round(r.execution_time, 4), "rows_affected": r.rows_affected,
            "failures": r.failures,
            "failing_rows_sample": {"columns": r.sample_columns, "rows": [list(x) for x in r.sample_rows]}
            if r.sample_rows else None,
            "timing": [{"name": "execute", "started_at": r.started_at, "completed_at": r.completed_at}],
            "relation_name": r.relation, "materialized": r.materialized,
        })
    data = {"metadata": _metadata(project), "command": command, "elapsed_time": round(elapsed, 4),
            "args": args, "results": rows, **(extra or {})}
    path = target_dir / "run_results.json"
    _write(path, data)
    return path
