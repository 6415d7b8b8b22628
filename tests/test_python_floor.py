"""pyproject says Python >= 3.10 (and the README's install section): no module imports, unguarded, a
standard-library name that only exists from 3.11 on (the suite itself runs on a newer Python, so an
import like this would pass every other test and break the first 3.10 user)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# standard-library names added in 3.11 or later
NEWER = {("enum", "StrEnum"), ("typing", "Self"), ("typing", "LiteralString"), ("typing", "Never"),
         ("typing", "assert_never"), ("typing", "reveal_type"), ("datetime", "UTC"), ("tomllib", None),
         ("asyncio", "TaskGroup"), ("asyncio", "timeout"), ("contextlib", "chdir"), ("hashlib", "file_digest"),
         ("enum", "verify"), ("enum", "ReprEnum")}


def _guarded(tree: ast.Module) -> set[int]:
    """Lines of imports inside `try: ... except ImportError` (a fallback for older Pythons)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            lines.update(n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno"))
    return lines


def _newer_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = _guarded(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if (node.module, a.name) in NEWER or (node.module, None) in NEWER]
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if (a.name, None) in NEWER]
    return [f"{path.relative_to(ROOT)}:{item}" for item in found]


def test_no_unguarded_import_newer_than_python_3_10():
    files = [p for folder in ("sqlsynth", "training") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    offending = [hit for path in files for hit in _newer_imports(path)]
    assert offending == [], "needs Python 3.11+ (guard it with try/except ImportError): " + ", ".join(offending)
