"""dbt features sqlsynth does not have: said out loud (a warning or an error naming the file and line),
never silently ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean
from .yamlfile import LineDict

SCHEMA_KEYS = {"version", "models", "sources", "seeds", "unit_tests"}
# dbt's other top-level schema keys: accepted with a warning, since a dbt project has them
UNSUPPORTED_SCHEMA_KEYS = {"exposures", "metrics", "semantic_models", "saved_queries", "snapshots",
                           "analyses", "macros", "groups"}


def _warn(where: str, message: str) -> None:
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
            _warn(where, f"'{key}:' is ignored (not supported by sqlsynth)")
        elif key not in SCHEMA_KEYS:
            raise ConfigError(f"unknown top-level key '{key}'", path=path, line=line,
                              hint=did_you_mean(str(key), SCHEMA_KEYS | UNSUPPORTED_SCHEMA_KEYS)
                              or f"allowed: {', '.join(sorted(SCHEMA_KEYS))}")


def warn_unsupported_folders(project_dir: Path) -> None:
    """A snapshots/ folder with files, or a packages.yml / dependencies.yml: dbt features sqlsynth lacks."""
    snapshots = project_dir / "snapshots"
    if snapshots.is_dir() and any(p.is_file() and p.name != ".gitkeep" for p in snapshots.rglob("*")):
        _warn("snapshots/", "snapshots are not supported; these files are ignored")
    for name in ("packages.yml", "dependencies.yml"):
        if (project_dir / name).exists():
            _warn(name, "packages are not supported; macros from packages are not available")
