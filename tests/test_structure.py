"""The package's shape: no import circle (function-level imports count), no module over 600 lines,
no lists of module names imported for their side effects (plugins register through
sqlsynth.extensions instead)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sqlsynth"
MAX_LINES = 600
SIDE_EFFECT_LISTS = ("BUILTIN_MODULES", "PLUGIN_MODULES", "SEED_READER_MODULES")
MODULE_NAME = re.compile(r"sqlsynth(\.\w+)+")


def _modules() -> dict[str, Path]:
    """Dotted name -> file for every module in sqlsynth/ (sqlsynth.testing is test support)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "testing" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement may refer to (a from-import's names may be modules)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(name, path, node):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a module importing its own package's __init__ is not a circle worth reporting
                if target and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            vertex, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[vertex] = min(low[vertex], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[vertex])
            if low[vertex] == index[vertex]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == vertex:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_circle_through_a_function_level_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(edges) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_package():
    edges = import_graph()
    assert "sqlsynth.extensions" in edges and len(edges) > 30
    # an `if TYPE_CHECKING:` import counts too (../shared/tools/structure-check counts it): annotate with
    # Any, or move the shared type to a module both can import
    assert import_circles(edges) == []


def test_the_extension_registry_sits_at_the_bottom():
    edges = import_graph()
    assert edges["sqlsynth.extensions"] <= {"sqlsynth.errors"}
    assert edges["sqlsynth.errors"] == set()


def test_no_module_over_600_lines():
    paths = list(PACKAGE.rglob("*.py")) + list((ROOT / "training").rglob("*.py"))
    too_long = {str(p.relative_to(ROOT)): n for p in paths if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert too_long == {}


def test_no_module_name_lists_or_find_spec_guards_for_own_modules():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if any(name in text for name in SIDE_EFFECT_LISTS) or 'find_spec("sqlsynth' in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert not (PACKAGE / "plugins.py").exists()


def _module_name_lists(tree: ast.AST) -> list[int]:
    """Lines of list/tuple/set literals of two or more strings that all name sqlsynth modules."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) and MODULE_NAME.fullmatch(e.value)
                for e in node.elts):
            found.append(node.lineno)
    return found


def test_no_module_name_string_lists_outside_the_registry():
    """Modules are loaded by name in one place only: extensions.DEFAULT_PLUGINS (simonw/llm's model),
    whose register() hooks are called explicitly; anywhere else a list of module names would be code
    loaded for its import side effects."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        rel = str(path.relative_to(ROOT))
        lines = _module_name_lists(tree)
        if rel == "sqlsynth/extensions.py":
            assert len(lines) == 1  # DEFAULT_PLUGINS
            continue
        offenders += [f"{rel}:{line}" for line in lines]
        offenders += [f"{rel}:{n.lineno} import_module" for n in ast.walk(tree)
                      if isinstance(n, ast.Attribute) and n.attr == "import_module"]
    assert offenders == []


def test_the_module_name_list_check_finds_one():
    tree = ast.parse('MODULES = ["sqlsynth.llm.plugin", "sqlsynth.corpus.plugin"]\nOK = ("a", "b")')
    assert _module_name_lists(tree) == [1]


def test_no_module_imports_another_modules_private_names():
    """A leading underscore means "this module only": what other modules (and tests) use is public."""
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "training").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    ("sqlsynth", "training"))):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}" for alias in node.names
                              if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert offenders == []


NODE_TYPE_AND_STATUS_VALUES = {"model", "seed", "test", "unit_test", "source",
                               "success", "pass", "warn", "fail", "error", "skipped"}


def _literal_strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _literal_type_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing `x.resource_type` or `x.status` with a string literal instead of the enum."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr in ("resource_type", "status") for s in sides) and \
                    any(v in NODE_TYPE_AND_STATUS_VALUES for s in sides for v in _literal_strings(s)):
                found.append(node.lineno)
    return found


def test_node_types_and_statuses_are_compared_as_enums():
    """sqlsynth.node_types.NodeType / Status, not "model" / "error" spelled out in each module."""
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in PACKAGE.rglob("*.py")
                 for line in _literal_type_comparisons(ast.parse(path.read_text()))]
    assert offenders == []
    tree = ast.parse('if node.resource_type in ("model", "seed") or r.status == "error": pass')
    assert _literal_type_comparisons(tree) == [1, 1]
