"""Discover a project's files and turn them into nodes: seeds, models, data tests and sources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PROJECT_FILE, ProjectConfig, load_project_config
from .contracts import validate_contracts
from .dbt_compat import (
    apply_generate_schema_name,
    check_schema_file,
    generic_test_name,
    package_names,
    render_descriptions,
    unknown_ref_error,
    warn,
    warn_unsupported_folders,
)
from .errors import ConfigError, ProjectError, did_you_mean
from .extensions import registry
from .folder_configs import render_config_tree, warn_config_typos, warn_unknown_folders
from .identifiers import unselectable_character
from .node_types import RELATION_TYPES, NodeType
from .python_udfs import UdfModule, UdfSpec, import_udf_file
from .render import Relation, Renderer, RenderState
from .unit_test_yaml import check_given_inputs, unit_test_fields
from .yamlfile import LineDict, load_yaml

MATERIALIZATIONS = ("view", "table", "incremental", "ephemeral", "external")
BUILTIN_SEED_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
# Config keys recognised without a leading '+' in project.yml folder configs (as dbt does).
KNOWN_CONFIGS = {
    "materialized", "schema", "alias", "tags", "enabled", "unique_key", "incremental_strategy",
    "on_schema_change", "dialect", "location", "format", "column_types", "delimiter", "quote",
    "severity", "where", "error_if", "warn_if", "pre_hook", "post_hook", "pre-hook", "post-hook",
    "full_refresh", "meta", "docs", "persist_docs", "quote_columns", "description", "allow_outside_project",
    "contract", "fail_on_ai_errors",
}
ADDITIVE_CONFIGS = {"tags"}
_BUILTIN_MACROS = Path(__file__).parent / "macros"


@dataclass
class Column:
    name: str
    description: str = ""
    data_type: str | None = None


@dataclass
class Node:
    """One thing the engine can build or check. ``unique_id`` is dbt's `<type>.<project>.<name>`."""

    unique_id: str
    resource_type: NodeType
    name: str
    original_file_path: str
    raw_code: str = ""
    fqn: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    columns: dict[str, Column] = field(default_factory=dict)
    # data tests only
    test_metadata: dict[str, Any] | None = None
    attached_node: str | None = None
    column_name: str | None = None
    # sources only
    source_name: str | None = None
    external_location: str | None = None
    compiled_code: str | None = None
    yaml_path: str | None = None
    yaml_line: int | None = None
    unit_test: dict[str, Any] | None = None  # unit tests only: given, expect, overrides (unit_tests.py)

    @property
    def materialized(self) -> str:
        return self.config.get("materialized", "view")

    @property
    def schema(self) -> str:
        return self.config.get("schema") or "main"

    @property
    def alias(self) -> str:
        return self.config.get("alias") or self.name

    @property
    def relation(self) -> Relation:
        return Relation(self.schema, self.alias)

    @property
    def tags(self) -> list[str]:
        tags = self.config.get("tags") or []
        return [tags] if isinstance(tags, str) else list(tags)


@dataclass
class Project:
    dir: Path
    config: ProjectConfig
    vars: dict[str, Any]
    nodes: dict[str, Node]
    renderer: Renderer
    udf_modules: list[UdfModule]
    target_name: str = "duckdb"  # the --target chosen (sqlsynth.targets)
    target: Any = None  # its connection config; None = the embedded DuckDB
    disabled: dict[str, str] = field(default_factory=dict)  # name -> file of a node with enabled=false

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def target_dir(self) -> Path:
        return self.dir / self.config.target_path

    @property
    def database_path(self) -> Path:
        db = self.config.database or f"{self.config.target_path}/{self.name}.duckdb"
        path = Path(db).expanduser()
        return path if path.is_absolute() else self.dir / path

    @property
    def udfs(self) -> list[UdfSpec]:
        return [spec for module in self.udf_modules for spec in module.functions]

    @property
    def pydantic_models(self) -> dict[str, Any]:
        return {name: model for module in self.udf_modules for name, model in module.pydantic_models.items()}

    def by_type(self, *types: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.resource_type in types]

    def find(self, name: str, types: tuple[str, ...] = RELATION_TYPES) -> Node | None:
        for node in self.nodes.values():
            if node.name == name and node.resource_type in types:
                return node
        return None

    def render_state(self, node: Node, *, resolve_ref, incremental: bool = False) -> RenderState:
        return RenderState(node_name=node.name, path=node.original_file_path, resolve_ref=resolve_ref,
                           resolve_source=self.source_relation, this=node.relation,
                           incremental=incremental, vars=self.vars, config={})

    def source_relation(self, source_name: str, table_name: str) -> Any:
        node = self.nodes.get(f"source.{self.name}.{source_name}.{table_name}")
        if node is None:
            known = [f"{n.source_name}.{n.name}" for n in self.by_type(NodeType.SOURCE)]
            hint = did_you_mean(f"{source_name}.{table_name}", known) or (
                "declare it under sources: in a .yml file in models/")
            raise ProjectError(f"unknown source '{source_name}.{table_name}'", hint=hint)
        if node.external_location:
            location = node.external_location
            if "{{" in location:  # e.g. "{{ var('data_dir', '../data') }}/events.csv"
                location = self.renderer.render_nested(location)
            location = location.replace("{name}", node.name).replace("{identifier}", node.alias)
            if "://" not in location and not Path(location).is_absolute():
                location = str(self.dir / location)  # relative to the project, not the working dir
            return _external_reader(location)
        return node.relation


def _external_reader(location: str) -> str:
    lowered = location.lower()
    if lowered.endswith(".parquet"):
        return f"read_parquet('{location}')"
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return f"read_json_auto('{location}')"
    return f"read_csv_auto('{location}')"


# --------------------------------------------------------------------------------------------
# file discovery

def _walk(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under root, skipping hidden folders, target/ and nested projects (test fixtures)."""
    if not root.is_dir():
        return []
    found: list[Path] = []
    for path in sorted(root.iterdir()):
        # dbt reads `__sources.yml`/`_schema.yml`; only hidden entries and folders like __pycache__ are skipped
        if path.name.startswith(".") or (path.name.startswith("__") and path.is_dir()):
            continue
        if path.is_dir():
            if (path / "project.yml").exists() or (path / "dbt_project.yml").exists():
                continue
            found.extend(_walk(path, suffixes))
        elif path.suffix.lower() in suffixes:
            found.append(path)
    return found


def _rel(path: Path, project_dir: Path) -> str:
    return path.relative_to(project_dir).as_posix()


# --------------------------------------------------------------------------------------------
# folder-level configs from project.yml

def folder_config(tree: dict[str, Any], project_name: str, parts: list[str]) -> dict[str, Any]:
    """Merge `+key: value` configs along the folder path, dbt_project.yml style."""
    merged: dict[str, Any] = {}

    def apply(level: dict[str, Any], rest: list[str]) -> None:
        for key, value in level.items():
            name = key[1:] if key.startswith("+") else key
            if key.startswith("+") or (name in KNOWN_CONFIGS and not isinstance(value, dict)) \
                    or name in ("meta", "column_types", "docs"):
                merge_config(merged, {name.replace("-", "_"): value})
        if rest and isinstance(level.get(rest[0]), dict):
            apply(level[rest[0]], rest[1:])

    if isinstance(tree.get(project_name), dict):
        root_level = {k: v for k, v in tree.items() if k != project_name}
        apply(root_level, [])
        apply(tree[project_name], parts)
    else:
        apply(tree, parts)
    return merged


def merge_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        key = key.replace("-", "_")
        if key in ADDITIVE_CONFIGS and key in base:
            old = base[key] if isinstance(base[key], list) else [base[key]]
            new = value if isinstance(value, list) else [value]
            base[key] = old + [t for t in new if t not in old]
        else:
            base[key] = value
    return base


# --------------------------------------------------------------------------------------------
# loading

def load_project(project_dir: Path, cli_vars: dict[str, Any] | None = None, target_name: str | None = None) -> Project:
    project_dir = project_dir.resolve()
    config = load_project_config(project_dir)
    variables = {**config.vars, **(cli_vars or {})}
    macro_files = {_rel(p, project_dir): p.read_text(encoding="utf-8")
                   for d in config.macro_paths for p in _walk(project_dir / d, (".sql", ".jinja"))}
    builtin = {f"<sqlsynth>/macros/{p.name}": p.read_text(encoding="utf-8")
               for p in sorted(_BUILTIN_MACROS.glob("*.sql"))}
    # target.name is the --target chosen (dbt's profile output); target.type stays duckdb: models are DuckDB SQL
    target_info = {"name": target_name or config.target or "dev", "schema": "main", "type": "duckdb",
                   "threads": config.threads,
                   "profile_name": config.name}
    renderer = Renderer(config.name, macro_files, builtin, target_info, package_names(project_dir))
    udf_modules = [import_udf_file(p, _rel(p, project_dir))
                   for d in config.udf_paths for p in _walk(project_dir / d, (".py",))]
    project = Project(project_dir, config, variables, {}, renderer, udf_modules)
    target_info["database"] = str(project.database_path)

    for tree in (config.models, config.seeds, config.tests, config.data_tests):
        render_config_tree(renderer, tree, variables, PROJECT_FILE)
    warn_unsupported_folders(project_dir, config.model_paths)
    for section, paths in (("models", config.model_paths), ("seeds", config.seed_paths)):
        warn_unknown_folders(project_dir, config.name, section, getattr(config, section), paths, KNOWN_CONFIGS)
        warn_config_typos(section, getattr(config, section), KNOWN_CONFIGS)
    _discover_seeds(project)
    _discover_models(project)
    _discover_singular_tests(project)
    _apply_schema_files(project)
    render_descriptions(project)
    _parse_sql_nodes(project)
    apply_generate_schema_name(project)
    _check_unique_relations(project)
    validate_contracts(project)
    return project


def _add(project: Project, node: Node) -> None:
    bad = unselectable_character(node.name)
    if bad is not None and node.resource_type != NodeType.SOURCE and node.yaml_path is None:
        shown = "a space" if bad.isspace() else repr(bad)
        raise ProjectError(f"the {node.resource_type} name '{node.name}' contains {shown}, so --select "
                           "could never pick it", path=node.original_file_path,
                           hint="rename the file using letters, digits, '_', '-' or '.'")
    existing = project.nodes.get(node.unique_id)
    if existing is not None:
        raise ProjectError(f"two {node.resource_type}s are named '{node.name}': "
                           f"{existing.original_file_path} and {node.original_file_path}",
                           path=node.original_file_path, hint="rename one of the files")
    project.nodes[node.unique_id] = node


def _discover_seeds(project: Project) -> None:

    for folder in project.config.seed_paths:
        for path in _walk(project.dir / folder, seed_suffixes()):
            rel = _rel(path, project.dir)
            parts = list(Path(rel).relative_to(folder).parent.parts)
            config = folder_config(project.config.seeds, project.name, parts)
            node = Node(f"seed.{project.name}.{path.stem}", NodeType.SEED, path.stem, rel,
                        fqn=[project.name, *parts, path.stem], config={"materialized": "seed", **config})
            _add(project, node)


def _discover_models(project: Project) -> None:
    for folder in project.config.model_paths:
        for path in _walk(project.dir / folder, (".sql",)):
            rel = _rel(path, project.dir)
            parts = list(Path(rel).relative_to(folder).parent.parts)
            config = folder_config(project.config.models, project.name, parts)
            node = Node(f"model.{project.name}.{path.stem}", NodeType.MODEL, path.stem, rel,
                        raw_code=path.read_text(encoding="utf-8"), fqn=[project.name, *parts, path.stem],
                        config={"materialized": "view", **config})
            _add(project, node)


def _discover_singular_tests(project: Project) -> None:
    tests_tree = {**project.config.tests, **project.config.data_tests}
    for folder in project.config.test_paths:
        for path in _walk(project.dir / folder, (".sql",)):
            rel = _rel(path, project.dir)
            parts = list(Path(rel).relative_to(folder).parent.parts)
            config = folder_config(tests_tree, project.name, parts)
            node = Node(f"test.{project.name}.{path.stem}", NodeType.TEST, path.stem, rel,
                        raw_code=path.read_text(encoding="utf-8"), fqn=[project.name, *parts, path.stem],
                        config={"severity": "error", **config})
            _add(project, node)


# --------------------------------------------------------------------------------------------
# schema.yml (version 2): descriptions, columns, configs, sources and generic tests

_MODEL_KEYS = {"name", "description", "config", "columns", "tests", "data_tests", "docs", "meta", "tags",
               "versions", "latest_version", "access", "group", "constraints", "contract"}
_COLUMN_KEYS = {"name", "description", "data_type", "tests", "data_tests", "meta", "tags", "quote",
                "constraints", "policy_tags", "granularity"}
_SOURCE_KEYS = {"name", "description", "schema", "database", "tables", "meta", "tags", "config",
                "loader", "freshness", "loaded_at_field", "quoting", "overrides"}
_SOURCE_TABLE_KEYS = {"name", "description", "identifier", "columns", "tests", "data_tests", "meta", "tags",
                      "config", "external", "freshness", "loaded_at_field", "quoting", "loader"}
_TEST_CONFIG_KEYS = {"severity", "where", "error_if", "warn_if", "tags", "enabled", "limit", "store_failures",
                     "meta", "config"}


def _check_keys(entry: Any, allowed: set[str], path: str, what: str) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(f"each {what} entry must be a mapping with a name",
                          path=path, line=getattr(entry, "line", None))
    for key in entry:
        if key not in allowed:
            line = entry.key_lines.get(key) if isinstance(entry, LineDict) else None
            raise ConfigError(f"unknown key '{key}' in {what} '{entry.get('name', '?')}'", path=path,
                              line=line, hint=did_you_mean(str(key), allowed) or f"allowed: {', '.join(sorted(allowed))}")
    if not entry.get("name"):
        raise ConfigError(f"{what} entry without 'name'", path=path, line=getattr(entry, "line", None))


def _schema_files(project: Project) -> list[Path]:
    folders = project.config.model_paths + project.config.seed_paths
    return [p for d in folders for p in _walk(project.dir / d, (".yml", ".yaml"))]


def _apply_schema_files(project: Project) -> None:
    for file in _schema_files(project):
        rel = _rel(file, project.dir)
        data = load_yaml(file, rel)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping (version: 2, models: [...])", path=rel)
        check_schema_file(data, rel)
        for source in data.get("sources") or []:
            _add_source(project, source, rel)
        for kind in ("models", "seeds"):
            for entry in data.get(kind) or []:
                _patch_node(project, entry, rel, kind[:-1])
        for entry in data.get("unit_tests") or []:
            _add(project, Node(**unit_test_fields(project, entry, rel)))
    check_given_inputs(project)


def _columns(entry: dict, path: str) -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for column in entry.get("columns") or []:
        _check_keys(column, _COLUMN_KEYS, path, "column")
        columns[column["name"]] = Column(column["name"], column.get("description") or "", column.get("data_type"))
    return columns


def _patch_node(project: Project, entry: Any, path: str, resource_type: str) -> None:
    _check_keys(entry, _MODEL_KEYS, path, resource_type)
    node = project.nodes.get(f"{resource_type}.{project.name}.{entry['name']}")
    if node is None:
        # dbt warns and skips the entry (stale YAML is common in real projects: mdsinabox's _docs.yml)
        known = [n.name for n in project.by_type(resource_type)]
        hint = did_you_mean(entry["name"], known) or "create it or remove the entry"
        warn(f"{path}:{entry.line}", f"{resource_type} '{entry['name']}' is described here but no such file "
             f"exists; the entry and its tests are ignored ({hint})")
        return
    node.description = entry.get("description") or ""
    node.columns = _columns(entry, path)
    node.yaml_path, node.yaml_line = path, entry.line
    merge_config(node.config, dict(entry.get("config") or {}))
    if entry.get("contract"):  # dbt accepts `contract:` beside `config:` too
        merge_config(node.config, {"contract": entry["contract"]})
    if entry.get("tags"):
        merge_config(node.config, {"tags": entry["tags"]})
    _generic_tests(project, node, entry, path)


def _add_source(project: Project, source: Any, path: str) -> None:
    _check_keys(source, _SOURCE_KEYS, path, "source")
    for table in source.get("tables") or []:
        _check_keys(table, _SOURCE_TABLE_KEYS, path, "source table")
        meta = {**(source.get("meta") or {}), **(source.get("config") or {}),
                **(table.get("meta") or {}), **(table.get("config") or {})}
        node = Node(f"source.{project.name}.{source['name']}.{table['name']}", NodeType.SOURCE, table["name"], path,
                    fqn=[project.name, source["name"], table["name"]],
                    config={"schema": source.get("schema") or source["name"],
                            "alias": table.get("identifier") or table["name"]},
                    description=table.get("description") or "", columns=_columns(table, path),
                    source_name=source["name"], external_location=meta.get("external_location"),
                    yaml_path=path, yaml_line=table.line)
        _add(project, node)
        _generic_tests(project, node, table, path)


def _test_entries(entry: dict) -> list[tuple[Any, int | None]]:
    tests = list(entry.get("tests") or []) + list(entry.get("data_tests") or [])
    line = getattr(entry.get("data_tests") or entry.get("tests"), "line", None)
    return [(t, getattr(t, "line", None) or line) for t in tests]


def _generic_tests(project: Project, node: Node, entry: dict, path: str) -> None:
    for test, line in _test_entries(entry):
        _add_generic_test(project, node, None, test, path, line)
    for column in entry.get("columns") or []:
        for test, line in _test_entries(column):
            _add_generic_test(project, node, column["name"], test, path, line)


def _split_test(test: Any, path: str, line: int | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A test entry → (macro name, arguments, config)."""
    if isinstance(test, str):
        return test, {}, {}
    if not isinstance(test, dict) or len(test) != 1:
        raise ConfigError("a test is a name or a single-key mapping like {accepted_values: {values: [...]}}",
                          path=path, line=line)
    (name, spec), = test.items()
    spec = dict(spec or {})
    config = dict(spec.pop("config", None) or {})
    arguments = dict(spec.pop("arguments", None) or {})
    for key in list(spec):
        if key in _TEST_CONFIG_KEYS:
            config[key] = spec.pop(key)
    arguments.update(spec)
    return str(name), arguments, config


def _add_generic_test(project: Project, node: Node, column: str | None, test: Any, path: str,
                      line: int | None) -> None:
    test_name, arguments, config = _split_test(test, path, line)
    macro = test_name.split(".")[-1]  # `dbt_utils.x` style names resolve to a local macro `test_x`
    if not project.renderer.has_macro(f"test_{macro}"):
        known = [m.removeprefix("test_") for m in project.renderer.macros if m.startswith("test_")]
        raise ConfigError(f"unknown test '{test_name}'", path=path, line=line,
                          hint=did_you_mean(macro, known) or "define it in macros/ with {% test name(model, column_name) %}")
    name = arguments.pop("name", None) or generic_test_name(test_name, node, column, arguments)
    unique_id = f"test.{project.name}.{name}"
    n = 2
    while unique_id in project.nodes:
        unique_id = f"test.{project.name}.{name}_{n}"
        n += 1
    tests_tree = {**project.config.tests, **project.config.data_tests}
    base = folder_config(tests_tree, project.name, [])
    test_node = Node(unique_id, NodeType.TEST, unique_id.rsplit(".", 1)[1], path,
                     fqn=[project.name, unique_id.rsplit(".", 1)[1]],
                     config=merge_config({"severity": "error", **base}, config),
                     test_metadata={"name": macro, "kwargs": arguments}, attached_node=node.unique_id,
                     column_name=column, yaml_path=path, yaml_line=line)
    project.nodes[unique_id] = test_node


# --------------------------------------------------------------------------------------------
# parse-time rendering: discover refs, sources and in-file config()

def _placeholder_ref(name: str, package: str | None) -> Relation:
    return Relation("__ref__", name)


def _parse_sql_nodes(project: Project) -> None:
    for node in list(project.nodes.values()):
        if node.resource_type == NodeType.MODEL or (node.resource_type == NodeType.TEST and node.test_metadata is None):
            state = project.render_state(node, resolve_ref=_placeholder_ref)
            state.config = dict(node.config)
            project.renderer.render(node.original_file_path, node.raw_code, state)
            node.config = _validated_config(node, state.config)
            node.refs, node.sources = _dedup(state.refs), _dedup(state.sources)
        elif node.resource_type == NodeType.TEST:
            node.refs, node.sources = _test_argument_refs(project, node)
        elif node.resource_type == NodeType.UNIT_TEST:  # runs before its model, once the model's inputs exist
            model = project.nodes[node.attached_node]
            node.refs, node.sources = list(model.refs), list(model.sources)
    disabled = {uid for uid, node in project.nodes.items() if node.config.get("enabled") is False}
    disabled_names = {project.nodes[uid].name for uid in disabled}
    for uid, node in project.nodes.items():
        # a test of a disabled model is disabled with it, as in dbt
        if node.resource_type in (NodeType.TEST, NodeType.UNIT_TEST) and (node.attached_node in disabled or set(node.refs) & disabled_names):
            disabled.add(uid)
    for uid in disabled:
        project.disabled.setdefault(project.nodes[uid].name, project.nodes[uid].original_file_path)
        del project.nodes[uid]
    for node in project.nodes.values():
        node.depends_on = _dependencies(project, node)


def _dedup(items: list) -> list:
    return list(dict.fromkeys(items))


def _validated_config(node: Node, config: dict[str, Any]) -> dict[str, Any]:
    materialized = config.get("materialized", "view")
    if node.resource_type == NodeType.MODEL and materialized not in MATERIALIZATIONS + tuple(_extra_materializations()):
        raise ConfigError(f"unknown materialization '{materialized}'", path=node.original_file_path,
                          hint=did_you_mean(str(materialized), MATERIALIZATIONS) or
                          f"use one of: {', '.join(MATERIALIZATIONS)}")
    if node.resource_type == NodeType.TEST and config.get("severity", "error").lower() not in ("warn", "error"):
        raise ConfigError("severity must be 'warn' or 'error'", path=node.original_file_path)
    return config


def seed_suffixes() -> tuple[str, ...]:
    """CSV/JSONL/Parquet plus the formats plugins add (sqlsynth.extensions seed_readers)."""
    return BUILTIN_SEED_SUFFIXES + tuple(registry().seed_readers)


def _extra_materializations() -> list[str]:
    return list(registry().materializations)


_REF_ARG = re.compile(r"^\s*(ref|source)\s*\(.*\)\s*$", re.S)


def _test_argument_refs(project: Project, node: Node) -> tuple[list[str], list[tuple[str, str]]]:
    """Generic-test arguments such as relationships' `to: ref('customers')` add dependencies."""
    state = project.render_state(node, resolve_ref=_placeholder_ref)
    for value in node.test_metadata["kwargs"].values():
        if isinstance(value, str) and _REF_ARG.match(value):
            project.renderer.render(node.original_file_path + "#args", "{{ " + value + " }}", state)
    return _dedup(state.refs), _dedup(state.sources)


def _ref_line(node: Node, name: str) -> int | None:
    text = node.raw_code
    match = re.search(r"ref\s*\(\s*(['\"][^'\"]*['\"]\s*,\s*)?['\"]" + re.escape(name) + r"['\"]", text)
    return text.count("\n", 0, match.start()) + 1 if match else node.yaml_line


def _dependencies(project: Project, node: Node) -> list[str]:
    deps: list[str] = []
    if node.attached_node and node.resource_type != NodeType.UNIT_TEST:
        deps.append(node.attached_node)
    for name in node.refs:
        target = project.find(name)
        if target is None and name in project.disabled:
            raise ProjectError(f"ref '{name}' points to a disabled node ({project.disabled[name]} has "
                               "enabled=false)", path=node.yaml_path or node.original_file_path,
                               line=_ref_line(node, name), hint=f"enable {name}, or disable this node too")
        if target is None:
            message, hint = unknown_ref_error(project.dir, project.config.model_paths, name,
                                              [n.name for n in project.by_type(*RELATION_TYPES)])
            raise ProjectError(message, path=node.yaml_path or node.original_file_path,
                               line=_ref_line(node, name), hint=hint)
        deps.append(target.unique_id)
    for source_name, table in node.sources:
        uid = f"source.{project.name}.{source_name}.{table}"
        if uid not in project.nodes:
            known = [f"{n.source_name}.{n.name}" for n in project.by_type(NodeType.SOURCE)]
            raise ProjectError(f"unknown source '{source_name}.{table}'", path=node.original_file_path,
                               hint=did_you_mean(f"{source_name}.{table}", known)
                               or "declare it under sources: in a .yml file")
        deps.append(uid)
    return _dedup(deps)


def _check_unique_relations(project: Project) -> None:
    seen: dict[str, Node] = {}
    for node in project.by_type(*RELATION_TYPES):
        if node.materialized == "ephemeral":
            continue
        key = str(node.relation).lower()
        if key in seen:
            raise ProjectError(f"{node.original_file_path} and {seen[key].original_file_path} both build {key}",
                               path=node.original_file_path, hint="set a different alias or schema in config()")
        seen[key] = node
