"""Jinja context (ref/source/var/env_var/config/this/is_incremental/macros) and compile checks."""

import pytest

from sqlsynth.api import Options, compile_nodes
from sqlsynth.errors import CompileError, ProjectError, RenderError

from helpers import build, query


def test_context_functions(make_project, monkeypatch):
    monkeypatch.setenv("SQLSYNTH_GREETING", "hello")
    root = make_project({
        "project.yml": "name: proj\nvars:\n  n: 3\n",
        "macros/m.sql": """
            {% macro times(x, k) %}({{ x }} * {{ k }}){% endmacro %}
            {% macro twice(x) %}{{ times(x, 2) }}{% endmacro %}
            {% macro pick() %}{{ return('picked') }}{% endmacro %}
            {% macro values() %}{{ return([1, 2, 3]) }}{% endmacro %}
            {% macro total() %}{{ values() | sum }}{% endmacro %}
        """,
        "models/src.sql": "{{ config(materialized='table', tags=['x']) }}\nselect 1 as id",
        "models/m.sql": """
            {{ config(materialized='table') }}
            {% set cols = ['a', 'b'] %}
            select
              {% for c in cols %}'{{ c }}' as {{ c }},{% endfor %}
              {{ twice(var('n')) }} as six,
              '{{ env_var('SQLSYNTH_GREETING') }}' as greeting,
              '{{ env_var('SQLSYNTH_MISSING_OK', 'fallback') }}' as fb,
              '{{ this.name }}' as me,
              '{{ pick() }}' as picked,
              {{ var('absent', 7) }} as dflt,
              '{{ config.get('materialized') }}' as mat,
              {{ total() }} as total
            from {{ ref('src') }}
        """,
    })
    assert build(root, "run").success
    assert query(root, "select * from m") == [("a", "b", 6, "hello", "fallback", "m", "picked", 7, "table", 6)]


def test_cli_vars_override(make_project):
    root = make_project({"project.yml": "name: proj\nvars: {n: 1}\n",
                         "models/m.sql": "{{ config(materialized='table') }}\nselect {{ var('n') }} as n"})
    assert build(root, "run", vars={"n": 5}).success
    assert query(root, "select n from m") == [(5,)]


def test_undefined_var_names_file_and_line(make_project):
    root = make_project({"models/m.sql": "select 1 as a,\n  {{ var('nope') }} as b"})
    with pytest.raises(RenderError) as info:
        build(root, "run")
    assert info.value.path == "models/m.sql" and info.value.line == 2
    assert "undefined var 'nope'" in info.value.message and "--vars" in info.value.hint


def test_missing_env_var(make_project, monkeypatch):
    monkeypatch.delenv("SQLSYNTH_NOT_SET", raising=False)
    root = make_project({"models/m.sql": "select 1 as b,\n  '{{ env_var('SQLSYNTH_NOT_SET') }}' as a"})
    with pytest.raises(RenderError) as info:
        build(root, "run")
    assert info.value.line == 2 and "SQLSYNTH_NOT_SET" in info.value.message


def test_jinja_syntax_error(make_project):
    root = make_project({"models/m.sql": "select 1\n{% if %}\n"})
    with pytest.raises(RenderError) as info:
        build(root, "run")
    assert info.value.path == "models/m.sql" and info.value.line == 2


def test_unknown_ref_suggests(make_project):
    root = make_project({"models/orders.sql": "select 1 as id",
                         "models/m.sql": "select *\nfrom {{ ref('order') }}"})
    with pytest.raises(ProjectError) as info:
        build(root, "run")
    assert info.value.line == 2 and "did you mean 'orders'" in info.value.hint


def test_sql_syntax_error_maps_to_source_line(make_project):
    root = make_project({
        "models/ok.sql": "{{ config(materialized='table') }}\nselect 1 as id",
        "models/bad.sql": "{% set cols = ['a', 'b', 'c'] %}\nselect\n{% for c in cols %}\n  1 as {{ c }},\n{% endfor %}\n  2 as d\nfrom {{ ref('ok') }}\nwhere id = = 1\n",
    })
    with pytest.raises(CompileError) as info:
        build(root, "run")
    assert info.value.path == "models/bad.sql"
    assert info.value.line == 8
    # nothing ran: the syntax check happens before any node is built
    assert not (root / "target/proj.duckdb").exists() or query(root, "select count(*) from information_schema.tables") == [(0,)]


def test_duckdb_only_syntax_runs(make_project):
    root = make_project({"models/m.sql": "{{ config(materialized='table') }}\nfrom (select 1 as a, 2 as b) select columns('a|b')"})
    assert build(root, "run").success
    assert query(root, "select * from m") == [(1, 2)]


def test_non_select_statement_is_refused(make_project):
    root = make_project({"models/m.sql": "create table x as select 1"})
    with pytest.raises(CompileError, match="SELECT"):
        build(root, "run")


def test_databricks_dialect_is_transpiled(make_project):
    root = make_project({
        "models/m.sql": """
            {{ config(materialized='table', dialect='databricks') }}
            select named_struct('a', 1, 'b', 'x') as s, array(1, 2, 3) as arr,
                   to_json(named_struct('k', 'v')) as j, date_add(date '2026-01-01', 1) as d
        """,
    })
    assert build(root, "run").success
    row = query(root, "select s.a, s.b, arr, j, d from m")[0]
    assert row[:3] == (1, "x", [1, 2, 3])
    assert row[3].replace(" ", "") == '{"k":"v"}'
    assert str(row[4]).startswith("2026-01-02")


def test_compile_writes_target(make_project):
    root = make_project({"models/a.sql": "select 1 as x", "models/b.sql": "select * from {{ ref('a') }}"})
    out = compile_nodes(Options(project_dir=root))
    assert [n.name for n, _, _ in out] == ["a", "b"]
    assert (root / "target/compiled/proj/models/b.sql").read_text().strip() == 'select * from "main"."a"'


def test_sources_with_tests_and_external_location(make_project):
    root = make_project({
        "data/events.csv": "id,kind\n1,a\n2,b\n2,c\n",
        "models/sources.yml": """
            version: 2
            sources:
              - name: raw
                tables:
                  - name: events
                    meta: {external_location: "data/events.csv"}
                    columns:
                      - name: id
                        data_tests: [unique]
        """,
        "models/m.sql": "{{ config(materialized='table') }}\nselect count(*) as n from {{ source('raw', 'events') }}",
    })
    report = build(root)  # the relative location resolves against the project, from any working dir
    by_name = {r.name: r for r in report.results}
    assert by_name["m"].status == "success"
    assert by_name["source_unique_raw_events_id"].status == "fail"
    assert query(root, "select n from m") == [(3,)]


def test_unknown_source(make_project):
    root = make_project({
        "models/sources.yml": "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: events\n",
        "models/m.sql": "select * from {{ source('raw', 'event') }}",
    })
    with pytest.raises(ProjectError) as info:
        build(root)
    assert "raw.events" in info.value.hint


def test_enabled_from_a_var_disables_model_and_its_tests(make_project):
    root = make_project({
        "models/base.sql": "select 1 as id",
        "models/optional.sql": "{{ config(enabled=var('with_optional', false)) }}\nselect * from {{ ref('base') }}",
        "models/schema.yml": "version: 2\nmodels:\n  - name: optional\n    columns:\n      - name: id\n        data_tests: [unique]\n",
        "tests/optional_check.sql": "select * from {{ ref('optional') }} where id is null",
    })
    report = build(root)
    assert [r.name for r in report.results] == ["base"]
    report = build(root, vars={"with_optional": True})
    assert sorted(r.name for r in report.results) == ["base", "optional", "optional_check", "unique_optional_id"]


def test_return_in_a_macro_called_from_the_same_file_without_patching_jinja(make_project):
    import jinja2
    import jinja2.runtime

    root = make_project({
        "macros/m.sql": """
            {% macro inner(x) %}{{ return(x * 2) }}{% endmacro %}
            {% macro outer(x) %}{{ return(inner(x) + 1) }}{% endmacro %}
        """,
        "models/a.sql": "select {{ outer(20) }} as n",
    })
    build(root)
    assert query(root, "select n from a") == [(41,)]
    # only sqlsynth's own environment honours return(): jinja's Macro class is left as shipped
    assert jinja2.runtime.Macro._invoke.__module__ == "jinja2.runtime"
    plain = jinja2.Environment().from_string("{% macro m() %}x{% endmacro %}{{ m() }}")
    assert plain.render() == "x"
