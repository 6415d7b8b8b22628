"""Folder configs in project.yml (`models: my_project: staging: +materialized: view`) must name folders.

dbt silently ignores a folder key that matches nothing, so a typo (`stagin:`) leaves every model
with the default config. sqlsynth warns, naming the key and the closest existing folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import did_you_mean

_NON_FOLDER_KEYS = {"meta", "column_types", "docs"}


def _folder_keys(level: dict[str, Any], known_configs: set[str], parts: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], int | None]]:
    """(folder path, line) of every key that folder_config treats as a sub-folder."""
    lines = getattr(level, "key_lines", {})
    for key, value in level.items():
        name = key[1:] if key.startswith("+") else key
        is_config = key.startswith("+") or name in _NON_FOLDER_KEYS or (name in known_configs
                                                                          and not isinstance(value, dict))
        if is_config or not isinstance(value, dict):
            continue
        yield (*parts, key), lines.get(key)
        yield from _folder_keys(value, known_configs, (*parts, key))


def warn_unknown_folders(project_dir: Path, project_name: str, section: str, tree: dict[str, Any],
                         paths: list[str], known_configs: set[str]) -> None:
    """One warning per folder key in `section:` (models/seeds) that no folder under `paths` has."""
    from .console import console

    level = tree.get(project_name) if isinstance(tree.get(project_name), dict) else tree
    prefix = [section, project_name] if level is not tree else [section]
    for parts, line in _folder_keys(level, known_configs):
        if any((project_dir / root).joinpath(*parts).is_dir() for root in paths):
            continue
        parent = [(project_dir / root).joinpath(*parts[:-1]) for root in paths]
        siblings = {p.name for folder in parent if folder.is_dir() for p in folder.iterdir() if p.is_dir()}
        where = f"project.yml:{line}" if line else "project.yml"
        hint = did_you_mean(parts[-1], siblings) or f"folders are looked up under {', '.join(paths)}"
        console.print(f"[yellow]warning[/yellow] {where}: {': '.join([*prefix, *parts])}: no folder "
                      f"{'/'.join(parts)} under {', '.join(paths)}, so this config applies to nothing; {hint}",
                      highlight=False)
