"""dbt's state selection: node checksums in manifest.json, and `state:` / `result:` selectors that
compare this project with the artifacts of an earlier run (`--state DIR`)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, SelectionError
from .node_types import NodeType, Status
from .project import Node, Project

STATE_VALUES = ("modified", "new", "old", "unmodified")
RESULT_VALUES = (Status.SUCCESS, Status.ERROR, Status.FAIL, Status.PASS, Status.WARN, Status.SKIPPED)


# --------------------------------------------------------------------------------------------
# checksums: what a node is built from, so an edit anywhere in it changes the digest


def _macro_text(project: Project, name: str) -> str:
    """The `{% macro name(...) %} ... {% endmacro %}` block (the whole file if it cannot be cut out)."""
    text = project.renderer.macro_file_text(name)
    block = re.search(r"{%-?\s*macro\s+" + re.escape(name) + r"\s*\(.*?{%-?\s*endmacro\b", text, re.S)
    return block.group(0) if block else text


def _called_macros(project: Project, code: str, first: list[str]) -> list[str]:
    """Macros the code calls, directly or through other macros (by name, as dbt's depends_on.macros)."""
    names = project.renderer.macros
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\s*\(") \
        if names else None
    seen: list[str] = []
    pending = [*first, *(pattern.findall(code) if pattern else [])]
    while pending:
        name = pending.pop()
        if name in seen or name not in names:
            continue
        seen.append(name)
        pending.extend(pattern.findall(_macro_text(project, name)) if pattern else [])
    return sorted(seen)


def _first_macros(node: Node) -> list[str]:
    """A generic test's node calls its test macro without naming it in its code."""
    return [f"test_{node.test_metadata['name']}"] if node.test_metadata else []


def macro_dependencies(project: Project, node: Node) -> list[str]:
    """dbt's depends_on.macros: `macro.<package>.<name>` of each macro the node calls, directly or not
    (package `sqlsynth` for the built-in ones, as dbt says `dbt`)."""
    def package(name: str) -> str:
        return "sqlsynth" if project.renderer.macros[name].startswith("<sqlsynth>/") else project.name

    return [f"macro.{package(m)}.{m}" for m in _called_macros(project, node.raw_code, _first_macros(node))]


def _seed_bytes(project: Project, node: Node) -> bytes:
    path = project.dir / node.original_file_path
    return path.read_bytes() if path.is_file() else b""


def node_checksum(project: Project, node: Node) -> str:
    """sha256 over the SQL, the config, the columns, the macros it calls and (seeds) the file's bytes."""
    digest = hashlib.sha256()
    parts: dict[str, Any] = {
        "code": node.raw_code, "config": node.config, "test": node.test_metadata, "unit_test": node.unit_test,
        "columns": {name: [c.data_type] for name, c in node.columns.items()},
        "location": node.external_location,
        "macros": {m: _macro_text(project, m) for m in _called_macros(project, node.raw_code, _first_macros(node))},
    }
    digest.update(json.dumps(parts, sort_keys=True, default=str).encode())
    if node.resource_type == NodeType.SEED:
        digest.update(_seed_bytes(project, node))
    return digest.hexdigest()


def checksums(project: Project) -> dict[str, str]:
    return {uid: node_checksum(project, node) for uid, node in project.nodes.items()}


# --------------------------------------------------------------------------------------------
# the earlier run's artifacts


@dataclass
class PreviousState:
    """manifest.json checksums and run_results.json statuses of an earlier run (`--state DIR`)."""

    folder: Path | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    has_results: bool = False

    def matches(self, project: Project, node: Node, method: str, value: str) -> bool:
        if method == "state":
            return self._state_matches(project, node, value)
        return self._result_matches(node, value)

    def _require(self, selector: str) -> None:
        if self.folder is None:
            raise SelectionError(f"'{selector}' compares with an earlier run, but no --state DIR was given",
                                 hint="pass --state with the target folder of that run (its manifest.json)")

    def _state_matches(self, project: Project, node: Node, value: str) -> bool:
        self._require(f"state:{value}")
        if value not in STATE_VALUES:
            raise SelectionError(f"unknown state selector 'state:{value}'",
                                 hint=f"use one of: {', '.join('state:' + v for v in STATE_VALUES)}")
        old = self.checksums.get(node.unique_id)  # "" when the earlier manifest had no checksum
        if value == "new":
            return old is None
        if value == "old":
            return old is not None
        modified = old != node_checksum(project, node)  # dbt: new nodes count as modified
        return modified if value == "modified" else not modified

    def _result_matches(self, node: Node, value: str) -> bool:
        self._require(f"result:{value}")
        if value not in RESULT_VALUES:
            raise SelectionError(f"unknown result selector 'result:{value}'",
                                 hint=f"use one of: {', '.join('result:' + v for v in RESULT_VALUES)}")
        if not self.has_results:
            raise SelectionError(f"'result:{value}' needs run_results.json in the --state folder",
                                 path=self.folder, hint="copy run_results.json there beside manifest.json")
        return self.statuses.get(node.unique_id) == value


def _read_json(path: Path, root: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}", path=_shown(path, root),
                          hint="point --state at the target folder of an earlier sqlsynth run") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} is not a JSON object", path=_shown(path, root))
    return data


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def load_state(folder: Path | None, project_dir: Path) -> PreviousState:
    """Read DIR/manifest.json (required) and DIR/run_results.json (when present); an empty state without DIR."""
    if folder is None:
        return PreviousState()
    root = project_dir.resolve()
    resolved = folder if folder.is_absolute() else root / folder
    manifest = resolved / "manifest.json"
    if not manifest.is_file():
        raise ConfigError("--state folder has no manifest.json", path=_shown(manifest, root),
                          hint="point --state at the target folder of an earlier sqlsynth run")
    data = _read_json(manifest, root)
    nodes = {**(data.get("nodes") or {}), **(data.get("sources") or {})}
    state = PreviousState(resolved, {uid: str((n.get("checksum") or {}).get("checksum") or "")
                                     for uid, n in nodes.items() if isinstance(n, dict)})
    results_path = resolved / "run_results.json"
    if results_path.is_file():
        results = _read_json(results_path, root).get("results", [])
        state.statuses = {r["unique_id"]: r.get("status") for r in results if isinstance(r, dict) and "unique_id" in r}
        state.has_results = True
    return state
