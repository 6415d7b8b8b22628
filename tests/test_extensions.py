"""The extension registry: a third-party plugin, found through its entry point, adds a SQL function,
a materialization and a seed reader through the same register() hook the built-in parts use."""

from __future__ import annotations

import os

import duckdb
import pytest

from sqlsynth import extensions
from sqlsynth.extensions import PluginError, Registry, load_plugin

from conftest import FIXTURES

PLUGIN_SITE = FIXTURES / "plugin_site"

PROJECT = {
    "seeds/people.tsv": "name\tage\nada\t36\nbob\t12\ncy\t58\n",
    "models/by_age.sql": """
        {{ config(materialized='sorted_table', sort_by='age') }}
        select name, age, shout(name) as loud from {{ ref('people') }}
    """,
}


def with_plugin() -> dict[str, str]:
    """The environment of a machine where the plugin package is installed."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN_SITE), os.environ.get("PYTHONPATH")]))}


def test_a_third_party_plugin_adds_a_function_a_materialization_and_a_seed_reader(make_project, cli):
    root = make_project(PROJECT)
    result = cli("build", cwd=root, env=with_plugin())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rows sorted by age" in result.stdout + result.stderr
    with duckdb.connect(str(root / "target" / "proj.duckdb"), read_only=True) as con:
        assert con.execute("select name, age, loud from by_age").fetchall() == [
            ("bob", 12, "BOB!"), ("ada", 36, "ADA!"), ("cy", 58, "CY!")]
        assert con.execute("select table_type from information_schema.tables where table_name = 'by_age'"
                       ).fetchone() == ("BASE TABLE",)


def test_without_the_plugin_its_materialization_is_unknown(make_project, cli):
    root = make_project(PROJECT)
    result = cli("build", cwd=root)
    assert result.returncode != 0
    assert "unknown materialization 'sorted_table'" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_the_plugins_own_config_error_is_one_message(make_project, cli):
    root = make_project({**PROJECT, "models/by_age.sql": """
        {{ config(materialized='sorted_table') }}
        select * from {{ ref('people') }}
    """})
    result = cli("build", cwd=root, env=with_plugin())
    assert result.returncode != 0
    assert "a sorted_table model needs sort_by" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_built_in_parts_register_through_the_same_hook():
    registry = extensions.registry()
    assert registry.plugins[:len(extensions.DEFAULT_PLUGINS)] == list(extensions.DEFAULT_PLUGINS)
    assert "vector_index" in registry.materializations and ".xml" in registry.seed_readers
    assert {command.name for command in registry.commands} >= {"cache", "plan"}


def test_a_plugin_without_register_or_registering_a_name_twice_is_refused():
    registry = Registry()
    with pytest.raises(PluginError, match="broken has no register"):
        load_plugin(registry, "broken", object())
    registry.add_materialization("x", lambda ctx: None)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_materialization("x", lambda ctx: None)


def test_build_preparers_are_entered_around_every_materialization(monkeypatch):
    from contextlib import contextmanager
    from types import SimpleNamespace

    from sqlsynth import materialize

    seen = []

    @contextmanager
    def preparer(ctx):
        seen.append(("enter", ctx.node))
        try:
            yield
        finally:
            seen.append(("exit", ctx.node))

    registry = Registry(build_preparers=[preparer])
    registry.add_materialization("recorded", lambda ctx: seen.append(("build", ctx.node)) or "built")
    registry.add_materialization("failing", lambda ctx: 1 / 0)
    monkeypatch.setattr(extensions, "_registry", registry)
    built = materialize.materializers()
    assert built["recorded"](SimpleNamespace(node="a")) == "built"
    with pytest.raises(ZeroDivisionError):
        built["failing"](SimpleNamespace(node="b"))
    assert seen == [("enter", "a"), ("build", "a"), ("exit", "a"), ("enter", "b"), ("exit", "b")]
    assert registry.build_preparers == [preparer] and "view" in built  # the engine's own ones too


def test_ai_query_batch_mode_registers_its_build_preparer():
    assert "batch_first" in [p.__name__ for p in extensions.registry().build_preparers]
