"""The extension registry: every optional part of sqlsynth plugs in here, built-ins included.

A plugin is a module (or any object) with a ``register(registry)`` function. The built-in parts
(ai_query in ``sqlsynth.llm``, the private-corpus path in ``sqlsynth.corpus``) are loaded from
DEFAULT_PLUGINS; third-party packages declare an entry point in the ``sqlsynth`` group:

    [project.entry-points.sqlsynth]
    my_plugin = "my_package.sqlsynth_plugin"

Both kinds go through the same ``register`` hook. This module sits at the bottom of the package
(it imports only sqlsynth.errors), so the engine modules can read the registry without importing
the parts that fill it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from .errors import SqlsynthError

ENTRY_POINT_GROUP = "sqlsynth"
# Built-in parts, registered exactly like a third-party plugin (cf. simonw/llm's DEFAULT_PLUGINS).
DEFAULT_PLUGINS = ("sqlsynth.llm.plugin", "sqlsynth.corpus.plugin", "sqlsynth.docs.plugin",
                   "sqlsynth.serve_command")


@dataclass
class Registry:
    """What plugins add. Each field is read by one engine module (named in the comment)."""

    # compile: (sqlglot tree, TransformContext) -> tree, run on every parsed model/query
    sql_transforms: list[Callable[[Any, Any], Any]] = field(default_factory=list)
    # functions: (connection, FunctionContext) -> None, called for every connection the engine opens
    function_providers: list[Callable[[Any, Any], None]] = field(default_factory=list)
    # targets.spark_udfs: FunctionContext -> [python_udfs.UdfSpec], the plugin's Python functions that a
    # Spark session registers as Arrow UDFs (DuckDB gets them through function_providers)
    python_functions: list[Callable[[Any], list[Any]]] = field(default_factory=list)
    # materialize: name -> builder(BuildContext) -> BuildResult
    materializations: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    # materialize: BuildContext -> context manager entered around every model's build (ai_query batch
    # mode answers the model's requests as one provider batch before its SQL runs)
    build_preparers: list[Callable[[Any], Any]] = field(default_factory=list)
    # seeds: file suffix -> reader(path, display_path, config) -> pyarrow RecordBatchReader
    seed_readers: dict[str, Callable[[Any, str, dict], Any]] = field(default_factory=dict)
    # cli: click commands or groups added to the `sqlsynth` command
    commands: list[Any] = field(default_factory=list)
    # runner: called on Ctrl-C to stop work the plugin has in flight
    interrupt_handlers: list[Callable[[], None]] = field(default_factory=list)
    # api: called when seed/run/test/build starts and ends; summaries go into run_results.json
    run_started: list[Callable[[], None]] = field(default_factory=list)
    run_finished: list[Callable[[], None]] = field(default_factory=list)
    # node name -> (values computed, values that ended in an error) this run: failures a model survives
    # (ai_query failOnError => false), shown on its line and turned into WARN/ERROR by the runner
    row_errors: list[Callable[[str], tuple[int, int]]] = field(default_factory=list)
    run_summaries: dict[str, Callable[[], Any]] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)

    def add_materialization(self, name: str, builder: Callable[[Any], Any]) -> None:
        if name in self.materializations:
            raise ValueError(f"materialization {name!r} is registered twice")
        self.materializations[name] = builder

    def add_seed_reader(self, suffix: str, reader: Callable[[Any, str, dict], Any]) -> None:
        suffix = suffix if suffix.startswith(".") else "." + suffix
        if suffix in self.seed_readers:
            raise ValueError(f"a seed reader for {suffix!r} is registered twice")
        self.seed_readers[suffix] = reader


class PluginError(SqlsynthError):
    """A plugin could not be loaded or registered (its name is in the message)."""


_registry: Registry | None = None
_lock = threading.Lock()


def _third_party() -> list[tuple[str, Any]]:
    return [(f"{ep.name} ({ep.value})", ep) for ep in entry_points(group=ENTRY_POINT_GROUP)]


def load_plugin(registry: Registry, name: str, plugin: Any) -> None:
    """Call one plugin's register hook."""
    register = getattr(plugin, "register", None)
    if not callable(register):
        raise PluginError(f"sqlsynth plugin {name} has no register(registry) function")
    register(registry)
    registry.plugins.append(name)


def _load() -> Registry:
    registry = Registry()
    for module in DEFAULT_PLUGINS:
        load_plugin(registry, module, importlib.import_module(module))
    for name, entry in _third_party():
        try:
            plugin = entry.load()
        except Exception as exc:  # a broken third-party package: name it, do not crash with a traceback
            raise PluginError(f"cannot load sqlsynth plugin {name}: {type(exc).__name__}: {exc}") from None
        load_plugin(registry, name, plugin)
    return registry


def registry() -> Registry:
    """The process-wide registry, filled by every plugin on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _load()
        return _registry
