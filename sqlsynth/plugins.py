"""Optional parts (ai_query, the corpus path) register themselves when their module is imported."""

from __future__ import annotations

import importlib
import importlib.util

_loaded: set[str] = set()


def load_plugins(modules: list[str]) -> None:
    """Import each module once, skipping those whose package is not there."""
    for name in modules:
        if name in _loaded:
            continue
        _loaded.add(name)
        package = name.rsplit(".", 1)[0]
        if importlib.util.find_spec(package) is not None and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
