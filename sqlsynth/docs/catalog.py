"""What the site shows per node: the project's definition, the database's columns and rows, the last
run's status (target/run_results.json), compiled SQL (target/manifest.json) and LLM usage (the
``sqlsynth.calls`` log plus the last run's per-model counters)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..database import connect
from ..errors import SqlsynthError
from ..node_types import NodeType
from ..project import Node, Project

# The last run's per-model ai_query counters worth showing (run_results.json "usage" → "models").
RUN_USAGE_KEYS = ("rows", "cached", "shared", "calls", "errors", "retries", "prompt_tokens",
                  "completion_tokens", "cost", "answered_by")


@dataclass
class Artifacts:
    """The JSON files the last commands left in target/ (empty when none ran yet)."""

    manifest: dict[str, Any] = field(default_factory=dict)
    run_results: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, target_dir: Path) -> Artifacts:
        return cls(_read_json(target_dir / "manifest.json"), _read_json(target_dir / "run_results.json"))

    def result(self, unique_id: str) -> dict[str, Any] | None:
        return next((r for r in self.run_results.get("results", []) if r.get("unique_id") == unique_id), None)

    def compiled(self, unique_id: str) -> str | None:
        for group in ("nodes", "sources"):
            node = self.manifest.get(group, {}).get(unique_id)
            if node and node.get("compiled_code"):
                return node["compiled_code"]
        return None

    def run_usage(self, name: str) -> dict[str, Any] | None:
        models = (self.run_results.get("usage") or {}).get("models") or {}
        usage = models.get(name)
        return {k: usage[k] for k in RUN_USAGE_KEYS if k in usage} if usage else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def open_database(project: Project) -> tuple[Any, str | None]:
    """A read-only connection, or None and why not (not built yet, or a build holds the file)."""
    path = project.database_path
    if not path.exists():
        return None, f"{path.name} does not exist yet: run `sqlsynth build` for columns, rows and LLM usage"
    try:
        return connect(path, read_only=True), None
    except SqlsynthError as exc:
        return None, f"database not read ({exc.message}): columns, rows and LLM usage are left out"


class DatabaseFacts:
    """Columns, row counts and the LLM call log, read once from the project's database."""

    def __init__(self, con: Any, project: Project):
        self.con = con
        self.project = project
        self._columns = self._all_columns()
        self._kinds = {(s, t): k for s, t, k in self._query(
            "select table_schema, table_name, table_type from information_schema.tables")}
        self.calls = self._calls_by_node()

    def _query(self, sql: str, params: list | None = None) -> list[tuple]:
        if self.con is None:
            return []
        return self.con.execute(sql, params or []).fetchall()

    def _all_columns(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, name, kind in self._query(
                "select table_schema, table_name, column_name, data_type from information_schema.columns "
                "order by table_schema, table_name, ordinal_position"):
            columns.setdefault((schema, table), []).append((name, kind))
        return columns

    def exists(self, node: Node) -> bool:
        return (node.schema, node.alias) in self._kinds

    def columns(self, node: Node) -> list[tuple[str, str]]:
        return self._columns.get((node.schema, node.alias), [])

    def row_count(self, node: Node) -> int | None:
        """Tables and views over exported files only: counting any other view would run its query
        (an ai_query view would call the LLM)."""
        kind = self._kinds.get((node.schema, node.alias))
        if kind is None or (kind == "VIEW" and node.materialized != "external"):
            return None
        try:
            return int(self._query(f"select count(*) from {node.relation}")[0][0])
        except Exception:  # a moved or deleted export file: the page says "unknown", not a crash
            return None

    def _calls_by_node(self) -> dict[str, dict[str, Any]]:
        if ("sqlsynth", "calls") not in self._kinds:
            return {}
        prices = {name: (e.price_per_1k_input_tokens or 0.0, e.price_per_1k_output_tokens or 0.0)
                  for name, e in self.project.config.endpoints.items()}
        usage: dict[str, dict[str, Any]] = {}
        for node, endpoint, calls, errors, truncated, prompt, completion, latency in self._query(
                "select node, endpoint, count(*), count(*) filter (status <> 'ok'), "
                "count(*) filter (finish_reason = 'length'), coalesce(sum(prompt_tokens), 0), "
                "coalesce(sum(completion_tokens), 0), coalesce(avg(latency_ms), 0) "
                "from sqlsynth.calls group by all order by all"):
            entry = usage.setdefault(node or "(query)", {"calls": 0, "errors": 0, "truncated": 0,
                                                         "prompt_tokens": 0, "completion_tokens": 0,
                                                         "cost": 0.0, "endpoints": []})
            price_in, price_out = prices.get(endpoint, (0.0, 0.0))
            for key, value in (("calls", calls), ("errors", errors), ("truncated", truncated),
                               ("prompt_tokens", prompt), ("completion_tokens", completion)):
                entry[key] += int(value)
            entry["cost"] = round(entry["cost"] + (prompt * price_in + completion * price_out) / 1000, 6)
            entry["endpoints"].append({"endpoint": endpoint, "calls": int(calls),
                                       "mean_latency_ms": round(float(latency), 1)})
        return usage


def _column_rows(node: Node, facts: DatabaseFacts) -> list[dict[str, str]]:
    """The database's columns with schema.yml descriptions; documented columns not built yet too."""
    rows = [{"name": name, "type": kind, "description": node.columns[name].description
             if name in node.columns else ""} for name, kind in facts.columns(node)]
    seen = {r["name"] for r in rows}
    rows += [{"name": c.name, "type": c.data_type or "", "description": c.description}
             for c in node.columns.values() if c.name not in seen]
    return rows


def _export_file(node: Node, project: Project) -> str | None:
    if node.resource_type != NodeType.MODEL or node.materialized != "external":
        return None
    from ..materialize import export_path

    try:
        path, _fmt = export_path(node, project.dir, project.target_dir)
    except SqlsynthError:
        return None
    return os.path.relpath(path, project.dir) if path.is_relative_to(project.dir) else str(path)


def _run_status(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    timing = (result.get("timing") or [{}])[0]
    return {"status": result.get("status"), "message": result.get("message"),
            "execution_time": result.get("execution_time"), "rows_affected": result.get("rows_affected"),
            "failures": result.get("failures"), "completed_at": timing.get("completed_at")}


def describe_node(node: Node, project: Project, facts: DatabaseFacts, artifacts: Artifacts) -> dict[str, Any]:
    """Everything the details panel shows for one node."""
    # ephemeral models are inlined as CTEs: no relation, nothing to count
    built = node.resource_type in (NodeType.MODEL, NodeType.SEED, NodeType.SOURCE) and not (
        node.resource_type == NodeType.MODEL and node.materialized == "ephemeral")
    return {
        "id": node.unique_id, "type": node.resource_type, "name": node.name, "path": node.original_file_path,
        "materialized": node.materialized if node.resource_type == NodeType.MODEL else None,
        "relation": str(node.relation) if built else None,
        "description": node.description, "tags": node.tags,
        "sql": node.raw_code, "compiled_sql": artifacts.compiled(node.unique_id),
        "columns": _column_rows(node, facts) if built else [],
        "built": facts.exists(node) if built else None,
        "rows": facts.row_count(node) if built else None,
        "run": _run_status(artifacts.result(node.unique_id)),
        "llm_calls": facts.calls.get(node.name), "llm_last_run": artifacts.run_usage(node.name),
        "export_file": _export_file(node, project),
        "external_location": node.external_location,
        "test": node.test_metadata, "column_name": node.column_name,
    }


def node_tests(project: Project) -> dict[str, list[str]]:
    """unique_id of a model/seed/source → the data tests that check it."""
    tested: dict[str, list[str]] = {}
    for test in project.by_type("test", "unit_test"):
        targets = [test.attached_node] if test.attached_node else test.depends_on
        for uid in targets:
            tested.setdefault(uid, []).append(test.unique_id)
    return tested
