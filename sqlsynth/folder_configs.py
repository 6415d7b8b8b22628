"""Folder configs in project.yml (`models: my_project: staging: +materialized: view`) must name folders.

dbt silently ignores a folder key that matches nothing, so a typo (`stagin:`) leaves every model
with the default config. sqlsynth warns, naming the key and the closest existing folder; likewise a
`+key` one letter off a config sqlsynth reads (`+materialised:`), since custom keys are allowed.
"""

from __future__ import annotations

import difflib
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


def _config_keys(level: dict[str, Any]) -> Iterator[tuple[str, int | None]]:
    """(`+key`, line) of every config key at any folder level."""
    lines = getattr(level, "key_lines", {})
    for key, value in level.items():
        if key.startswith("+"):
            yield key, lines.get(key)
        elif isinstance(value, dict) and key not in _NON_FOLDER_KEYS:
            yield from _config_keys(value)


def warn_config_typos(section: str, tree: dict[str, Any], known_configs: set[str]) -> None:
    """A `+key` that is no config sqlsynth reads but nearly one (ratio >= 0.85: custom keys such as
    a vector_index's `+search_column` stay quiet) would be kept as a custom key and change nothing."""
    from .console import console

    for key, line in _config_keys(tree):
        name = key[1:].replace("-", "_")
        close = difflib.get_close_matches(name, sorted(known_configs), n=1, cutoff=0.85)
        if name not in known_configs and close:
            where = f"project.yml:{line}" if line else "project.yml"
            console.print(f"[yellow]warning[/yellow] {where}: {section}: '{key}' is not a config sqlsynth "
                          f"reads, so it changes nothing; did you mean '+{close[0]}'?", highlight=False)


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


def render_config_tree(renderer: Any, tree: dict[str, Any], variables: dict[str, Any], path: str) -> None:
    """Render Jinja in folder config values in place, as dbt renders dbt_project.yml
    (`+enabled: "{{ var('load_source_data', false) }}"`); a rendered scalar is read as YAML, so
    'False' is false and '3' is 3."""
    from .errors import SqlsynthError
    from .render import RenderState

    def refuse(*_args: Any) -> Any:
        raise SqlsynthError("ref()/source() cannot be used in project.yml")

    for key, value in tree.items():
        if isinstance(value, dict):
            render_config_tree(renderer, value, variables, path)
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            state = RenderState(node_name=str(key), path=path, resolve_ref=refuse, resolve_source=refuse,
                                vars=variables)
            line = getattr(tree, "key_lines", {}).get(key)
            try:
                text = renderer.render(f"{path}#{key}", value, state)
            except SqlsynthError as exc:
                exc.path, exc.line = path, line
                exc.args = (exc.format(),)
                raise
            tree[key] = _scalar(text)


def _scalar(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float)) else text
