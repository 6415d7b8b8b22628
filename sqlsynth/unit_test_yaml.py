"""The `unit_tests:` entries of schema YAML (dbt 1.8 format), checked at load: `model`, `given` rows
per input (ref, source, this, or ai_query answers) as dicts or CSV, `expect` rows and `overrides`.
unit_tests.py runs them."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from .errors import ConfigError, did_you_mean
from .node_types import NodeType

# `project` below is project.py's Project, typed Any: project.py parses `unit_tests:` with this
# module, so importing it back would be an import circle.

UNIT_TEST_KEYS = {"name", "model", "description", "given", "expect", "overrides", "config", "versions"}
_GIVEN_KEYS = {"input", "rows", "format", "fixture"}
_OVERRIDE_KEYS = {"vars", "macros", "env_vars"}
_INPUT = re.compile(r"""^\s*(?:(ref)\(\s*['"]([^'"]+)['"]\s*\)|(source)\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)"""
                    r"""|(this)|(ai_query))\s*$""")
AI_QUERY = "ai_query"



def _fail(message: str, path: str, entry: Any, hint: str | None = None) -> ConfigError:
    return ConfigError(message, path=path, line=getattr(entry, "line", None), hint=hint)


def _input_key(text: Any, path: str, entry: Any) -> str:
    """ref('x') -> 'ref:x', source('s', 't') -> 'source:s.t', this -> 'this', ai_query -> 'ai_query'."""
    match = _INPUT.match(str(text or ""))
    if not match:
        raise _fail(f"unit test given input '{text}' is not ref('name'), source('src', 'table'), this or ai_query",
                    path, entry, hint="input: ref('stg_orders')")
    if match.group(1):
        return f"ref:{match.group(2)}"
    if match.group(3):
        return f"source:{match.group(4)}.{match.group(5)}"
    return match.group(6) or AI_QUERY


def _fixture_text(project: Any, item: dict, path: str, what: str, fmt: str) -> str:
    """dbt's `fixture: name`: <test-path>/fixtures/name.csv (format csv only)."""
    if fmt != "csv":
        raise _fail(f"{what}: fixture files need format: csv", path, item)
    candidates = [project.dir / folder / "fixtures" / f"{item['fixture']}.csv" for folder in project.config.test_paths]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise _fail(f"{what}: fixture file {item['fixture']}.csv not found", path, item,
                hint=f"put it at {candidates[0].relative_to(project.dir)}")


def _rows(project: Any, item: Any, path: str, what: str) -> list[dict[str, Any]] | dict[str, str]:
    """Rows as dicts (format: dict, the default), a CSV text with a header (format: csv, inline or
    `fixture: name`), or {"sql": query} (format: sql: a select returning the rows)."""
    fmt = (item.get("format") or "dict") if isinstance(item, dict) else "dict"
    rows = item.get("rows") if isinstance(item, dict) else None
    if isinstance(item, dict) and item.get("fixture"):
        rows = _fixture_text(project, item, path, what, fmt)
    if fmt == "sql":
        if not isinstance(rows, str) or not rows.strip():
            raise _fail(f"{what}: format sql needs rows as a select statement (rows: |)", path, item)
        return {"sql": rows.strip().rstrip(";")}
    if fmt == "csv":
        if not isinstance(rows, str):
            raise _fail(f"{what}: format csv needs rows as a text block (rows: |)", path, item)
        return [{k: _csv_value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(rows.strip()))]
    if fmt != "dict":
        raise _fail(f"{what}: format '{fmt}' is not supported", path, item, hint="use format: dict, csv or sql")
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise _fail(f"{what}: rows must be a list of mappings ({{column: value}})", path, item)
    return [dict(r) for r in rows]


def _csv_value(text: str | None) -> Any:
    """CSV cells typed as YAML would type them (5 -> int, 2.5 -> float, true, empty -> NULL); the real
    column's type, when the parent was built, casts them again at run time."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return {"true": True, "false": False}.get(text.lower(), text)


def _check_keys(entry: Any, allowed: set[str], path: str, what: str) -> None:
    if not isinstance(entry, dict):
        raise _fail(f"{what} must be a mapping", path, entry)
    for key in entry:
        if key not in allowed:
            raise _fail(f"unknown key '{key}' in {what}", path, entry,
                        hint=did_you_mean(str(key), allowed) or f"allowed: {', '.join(sorted(allowed))}")


def unit_test_fields(project: Any, entry: Any, path: str) -> dict[str, Any]:
    """One `unit_tests:` entry as the fields of a Node attached to its model (checked here, at load)."""
    _check_keys(entry, UNIT_TEST_KEYS, path, "unit test")
    name, model_name = entry.get("name"), entry.get("model")
    if not name or not model_name:
        raise _fail("a unit test needs 'name' and 'model'", path, entry)
    model = project.find(str(model_name), (NodeType.MODEL,))
    if model is None:
        raise _fail(f"unit test '{name}': no model named '{model_name}'", path, entry,
                    hint=did_you_mean(str(model_name), [n.name for n in project.by_type(NodeType.MODEL)]))
    given = []
    for item in entry.get("given") or []:
        _check_keys(item, _GIVEN_KEYS, path, f"unit test '{name}' given")
        given.append({"input": _input_key(item.get("input"), path, item), "line": getattr(item, "line", None),
                      "rows": _rows(project, item, path, f"unit test '{name}' given {item.get('input')}")})
    expect = entry.get("expect")
    _check_keys(expect, {"rows", "format", "fixture"}, path, f"unit test '{name}' expect")
    overrides = entry.get("overrides") or {}
    _check_keys(overrides, _OVERRIDE_KEYS, path, f"unit test '{name}' overrides")
    config = dict(entry.get("config") or {})
    return {"unique_id": f"unit_test.{project.name}.{model.name}.{name}", "resource_type": NodeType.UNIT_TEST,
            "name": str(name), "original_file_path": path, "fqn": [project.name, model.name, str(name)],
            "config": {"enabled": True, **config}, "description": entry.get("description") or "",
            "attached_node": model.unique_id, "yaml_path": path, "yaml_line": getattr(entry, "line", None),
            "unit_test": {"given": given, "expect": _rows(project, expect, path, f"unit test '{name}' expect"),
                          "overrides": {k: dict(overrides.get(k) or {}) for k in _OVERRIDE_KEYS}}}


def check_given_inputs(project: Any) -> None:
    """Each given ref()/source() names a model, seed or source of the project (dbt: "had an input which
    was not found"); run once every schema file is read, as a source may be declared in a later one."""
    for node in project.by_type(NodeType.UNIT_TEST):
        for item in node.unit_test["given"]:
            kind, _, name = item["input"].partition(":")
            if kind == "ref" and project.find(name) is None:
                known = [n.name for n in project.nodes.values() if n.resource_type in (NodeType.MODEL, NodeType.SEED)]
                missing = f"ref('{name}'): no model or seed named '{name}'"
            elif kind == "source" and f"source.{project.name}.{name}" not in project.nodes:
                known = [f"{n.source_name}.{n.name}" for n in project.by_type(NodeType.SOURCE)]
                missing = f"source: no source table '{name}'"
            else:
                continue
            raise ConfigError(f"unit test '{node.name}' given {missing}", path=node.yaml_path, line=item["line"],
                              hint=did_you_mean(name, known) or "given inputs are the refs and sources the model reads")
