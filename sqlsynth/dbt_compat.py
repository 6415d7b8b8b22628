"""dbt features sqlsynth does not have: said out loud (a warning or an error naming the file and line),
never silently ignored."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, RenderError, did_you_mean
from .node_types import NodeType
from .yamlfile import LineDict

SCHEMA_KEYS = {"version", "models", "sources", "seeds", "unit_tests"}
# dbt's other top-level schema keys: accepted with a warning, since a dbt project has them
UNSUPPORTED_SCHEMA_KEYS = {"exposures", "metrics", "semantic_models", "saved_queries", "snapshots",
                           "analyses", "macros", "groups"}


def warn(where: str, message: str) -> None:
    from .console import console

    console.print(f"[yellow]warning[/yellow] {where}: {message}", highlight=False)


def _where(path: str, mapping: Any, key: str) -> tuple[str, int | None]:
    line = mapping.key_lines.get(key) if isinstance(mapping, LineDict) else None
    return (f"{path}:{line}" if line else path), line


def check_schema_file(data: dict, path: str) -> None:
    """Unknown top-level keys are errors (with a did-you-mean); dbt keys sqlsynth lacks are warnings."""
    for key in data:
        where, line = _where(path, data, key)
        if key in UNSUPPORTED_SCHEMA_KEYS:
            warn(where, f"'{key}:' is ignored (not supported by sqlsynth)")
        elif key not in SCHEMA_KEYS:
            raise ConfigError(f"unknown top-level key '{key}'", path=path, line=line,
                              hint=did_you_mean(str(key), SCHEMA_KEYS | UNSUPPORTED_SCHEMA_KEYS)
                              or f"allowed: {', '.join(sorted(SCHEMA_KEYS))}")


def python_models(project_dir: Path, model_paths: list[str]) -> dict[str, str]:
    """dbt Python models (`def model(dbt, session)` in models/**/*.py): name -> file."""
    found = {}
    for folder in model_paths:
        for path in sorted((project_dir / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"^def model\s*\(", text, re.M):
                found[path.stem] = path.relative_to(project_dir).as_posix()
    return found


def unknown_ref_error(project_dir: Path, model_paths: list[str], name: str, known: list[str]) -> tuple[str, str]:
    """The message and hint for a ref() to nothing: a dbt Python model is named as such."""
    if name in (python := python_models(project_dir, model_paths)):
        return (f"ref '{name}' is a dbt Python model ({python[name]}), which sqlsynth does not run",
                "write it as a SQL model, with the Python logic as a function in udfs/")
    return f"unknown ref '{name}'", did_you_mean(name, known) or "check the model's file name under models/"


def warn_unsupported_folders(project_dir: Path, model_paths: list[str] = ()) -> None:
    """A snapshots/ folder with files, a packages.yml / dependencies.yml, dbt Python models: dbt
    features sqlsynth lacks."""
    for path in python_models(project_dir, list(model_paths)).values():
        warn(path, "dbt Python models are not supported; this file is ignored")
    snapshots = project_dir / "snapshots"
    if snapshots.is_dir() and any(p.is_file() and p.name != ".gitkeep" for p in snapshots.rglob("*")):
        warn("snapshots/", "snapshots are not supported; these files are ignored")
    for name in ("packages.yml", "dependencies.yml"):
        if (project_dir / name).exists():
            warn(name, "packages are not supported (not installed); dbt_utils' common macros and tests are "
                       "built in (README: dbt compatibility), copy any other package macro into macros/")


# --------------------------------------------------------------------------------------------
# dbt's `adapter` and `dbt` objects in templates

# Models are DuckDB SQL on every target (Spark gets them transpiled), so dispatch looks for duckdb__.
DISPATCH_PREFIXES = ("duckdb__", "default__")


class Adapter:
    """The parts of dbt's `adapter` that project macros call: dispatch() and quote()."""

    def __init__(self, namespace: dict[str, Any], builtins: dict[str, Any]):
        self._namespace = namespace
        self._builtins = builtins

    def dispatch(self, macro_name: str, macro_namespace: str | None = None) -> Any:
        """dbt's search: the project's duckdb__/default__ implementation, then dbt's own macro."""
        for prefix in DISPATCH_PREFIXES:
            if callable(found := self._namespace.get(prefix + macro_name)):
                return found
        if macro_namespace in (None, "dbt") and macro_name in self._builtins:
            return self._builtins[macro_name]
        raise RenderError(f"adapter.dispatch('{macro_name}'): no macro default__{macro_name} or "
                          f"duckdb__{macro_name}",
                          hint=f"define {{% macro default__{macro_name}(...) %}} in macros/"
                          + ("" if macro_namespace in (None, "dbt")
                             else f" (package '{macro_namespace}' is not installed: packages are not supported)"))

    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + str(identifier).replace('"', '""') + '"'


class MacroPackage:
    """`dbt.date_trunc(...)`, `dbt_utils.star(...)`: a package name whose attributes are macros.
    `dbt` holds sqlsynth's built-ins; a package sqlsynth cannot install resolves to a project macro
    of the same name (copied into macros/), and an unknown one is one clear error, not 'undefined'."""

    def __init__(self, name: str, lookup: dict[str, Any], known: Any, provided: bool):
        self._name, self._lookup, self._known, self._provided = name, lookup, known, provided

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._known and callable(found := self._lookup.get(attr)):
            return found
        if self._provided:
            raise RenderError(f"{self._name}.{attr}: sqlsynth does not provide this dbt macro",
                              hint=did_you_mean(attr, list(self._known)) or f"define {{% macro {attr}(...) %}} in macros/")
        raise RenderError(f"{self._name}.{attr}: package '{self._name}' is not installed (packages are not supported)",
                          hint=f"copy the macro into macros/ as {{% macro {attr}(...) %}}: {self._name}.{attr} "
                               "then resolves to it")


# Packages a dbt project commonly calls without a packages.yml of its own (e.g. copied snippets).
COMMON_PACKAGES = ("dbt_utils", "dbt_date", "dbt_expectations", "audit_helper", "codegen")


def package_names(project_dir: Path) -> list[str]:
    """Namespaces of packages.yml's `package: org/name` entries (and of git URLs), plus common ones."""
    names = set(COMMON_PACKAGES)
    for file in ("packages.yml", "dependencies.yml"):
        path = project_dir / file
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, yaml.YAMLError):
            continue  # warn_unsupported_folders already says packages are ignored
        for entry in (data or {}).get("packages") or [] if isinstance(data, dict) else []:
            spec = entry.get("package") or entry.get("git") or "" if isinstance(entry, dict) else ""
            last = str(spec).rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]
            names |= {last.replace("-", "_"), last.removeprefix("dbt-").replace("-", "_")}
    return sorted(n for n in names if n.isidentifier())


def generic_test_name(test: str, node: Any, column: str | None, arguments: dict[str, Any]) -> str:
    """dbt's name for a generic test (synthesize_generic_test_names), so `-s <test name>` and
    run_results match a dbt run: [source_][package_]test_model_ then every argument, column_name
    included, in name order, lists flattened, joined by '__' (accepted_values_orders_status__placed__shipped,
    relationships_orders_customer_id__id__ref_customers_)."""
    package, _, name = test.rpartition(".")
    prefix = ("source_" if node.source_name else "") + (f"{package}_" if package else "") + name
    model = f"{node.source_name}_{node.name}" if node.source_name else node.name
    args = {**arguments, **({"column_name": column} if column else {})}
    flat: list[str] = []
    for key in sorted(args):
        value = args[key]
        flat.extend(str(v) for v in (value.values() if isinstance(value, dict) else
                                     value if isinstance(value, (list, tuple)) else [value]))
    full = f"{prefix}_{model}_" + "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", v) for v in flat)
    # dbt keeps the full name (its alias is shortened); a file name must stay under the OS limit
    return full if len(full) <= 200 else full[:160] + "_" + hashlib.md5(full.encode()).hexdigest()


def apply_generate_schema_name(project: Any) -> None:
    """A project's own `generate_schema_name(custom_schema_name, node)` macro decides each model's and
    seed's schema, as in dbt (jaffle-shop's puts seeds in `raw`). Without one, a `schema` config is the
    schema itself (sqlsynth's default; dbt's would be `<target.schema>_<schema>`)."""
    if not project.renderer.has_macro("generate_schema_name"):
        return
    for node in project.nodes.values():
        if node.resource_type not in (NodeType.MODEL, NodeType.SEED):
            continue
        state = project.render_state(node, resolve_ref=_no_ref)
        schema = project.renderer.call_macro("generate_schema_name", state,
                                             custom_schema_name=node.config.get("schema"), node=node).strip()
        if not schema:
            raise ConfigError(f"generate_schema_name returned no schema for {node.resource_type} '{node.name}'",
                              path=project.renderer.macros["generate_schema_name"],
                              hint="make every branch of the macro output a schema name")
        node.config["schema"] = schema


def _no_ref(*_args: Any) -> Any:
    raise RenderError("generate_schema_name cannot call ref()")


# --------------------------------------------------------------------------------------------
# docs blocks: `{% docs name %}...{% enddocs %}` in .md files, `{{ doc('name') }}` in descriptions

_DOCS_BLOCK = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.S)


def docs_blocks(project_dir: Path, folders: list[str]) -> dict[str, str]:
    blocks: dict[str, str] = {}
    for folder in folders:
        for path in sorted((project_dir / folder).rglob("*.md")):
            for name, text in _DOCS_BLOCK.findall(path.read_text(encoding="utf-8", errors="replace")):
                blocks[name] = text.strip()
    return blocks


def render_descriptions(project: Any) -> None:
    """dbt renders descriptions: `{{ doc('orders_status') }}` becomes that docs block's text (jaffle_shop)."""
    import jinja2

    blocks = docs_blocks(project.dir, list(project.config.model_paths))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def doc(name: str, *_package: str) -> str:
        if name not in blocks:
            raise RenderError(f"doc('{name}'): no {{% docs {name} %}} block in a .md file under models/",
                              hint=did_you_mean(name, list(blocks)) or "add the block, or write the description inline")
        return blocks[name]

    for node in project.nodes.values():
        for owner in (node, *node.columns.values()):
            if "{{" in (owner.description or ""):
                try:
                    owner.description = env.from_string(owner.description).render(doc=doc)
                except jinja2.TemplateError as exc:
                    raise RenderError(f"description of '{owner.name}': {exc}", path=node.yaml_path,
                                      line=node.yaml_line) from None
                except RenderError as exc:
                    exc.path, exc.line = node.yaml_path, node.yaml_line
                    exc.args = (exc.format(),)
                    raise


def missing_source_note(project: Any, node: Any, text: str) -> str:
    """A model that failed because a source table is absent: say so (dbt users run `dbt seed`, or a
    loader, before `dbt build`; jaffle-shop's seeds load only with --vars '{load_source_data: true}')."""
    lowered = text.lower()
    if not any(word in lowered for word in ("does not exist", "not_found", "cannot be found")):
        return ""
    for source_name, table in getattr(node, "sources", []) or []:
        source = project.nodes.get(f"source.{project.name}.{source_name}.{table}")
        if source is not None and not source.external_location and source.alias.lower() in lowered:
            return (f" (source '{source_name}.{table}' is not in the database: sqlsynth reads a source, it does "
                    f"not create it; load {source.schema}.{source.alias} first, e.g. with `sqlsynth seed`)")
    return ""
