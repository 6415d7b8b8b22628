"""Materializations on the real DuckDB file: view, table, incremental (3 strategies), ephemeral, external."""

import json

from helpers import build, query, statuses


def test_view_and_table_and_rebuild_type_change(make_project):
    root = make_project({
        "models/a.sql": "select 1 as id",
        "models/b.sql": "{{ config(materialized='table') }}\nselect id + 1 as id from {{ ref('a') }}",
    })
    report = build(root, "run")
    assert report.success, report.results
    assert query(root, "select table_type from information_schema.tables where table_name='a'") == [("VIEW",)]
    assert query(root, "select * from b") == [(2,)]
    (root / "models/a.sql").write_text("{{ config(materialized='table') }}\nselect 5 as id")
    assert build(root, "run").success
    assert query(root, "select table_type from information_schema.tables where table_name='a'") == [("BASE TABLE",)]
    assert query(root, "select * from b") == [(6,)]


def test_failed_table_build_keeps_previous_table(make_project):
    root = make_project({"models/t.sql": "{{ config(materialized='table') }}\nselect 1 as id"})
    assert build(root, "run").success
    (root / "models/t.sql").write_text("{{ config(materialized='table') }}\nselect cast('x' as integer) as id")
    report = build(root, "run")
    assert not report.success
    assert report.results[0].status == "error"
    assert "models/t.sql" in report.results[0].message
    assert query(root, "select * from t") == [(1,)]
    # no temporary table left behind
    assert query(root, "select count(*) from information_schema.tables where table_name like '%sqlsynth_tmp%'") == [(0,)]


INCREMENTAL = """
{{{{ config(materialized='incremental', unique_key={key}, incremental_strategy='{strategy}') }}}}
select id, val from {{{{ ref('src') }}}}
{{% if is_incremental() %}}
where id >= (select max(id) from {{{{ this }}}})
{{% endif %}}
"""


def _incremental_project(make_project, strategy, key="'id'"):
    return make_project({
        "seeds/src.csv": "id,val\n1,a\n2,b\n",
        "models/inc.sql": INCREMENTAL.format(strategy=strategy, key=key),
    })


def test_incremental_merge_updates_and_inserts(make_project):
    root = _incremental_project(make_project, "merge")
    assert build(root).success
    assert query(root, "select * from inc order by id") == [(1, "a"), (2, "b")]
    (root / "seeds/src.csv").write_text("id,val\n1,zzz\n2,B\n3,c\n")
    report = build(root)
    assert report.success
    # id 1 is below max(id) so it is not re-read; 2 is updated, 3 inserted
    assert query(root, "select * from inc order by id") == [(1, "a"), (2, "B"), (3, "c")]
    assert [r.rows_affected for r in report.results if r.name == "inc"] == [2]


def test_incremental_delete_insert(make_project):
    root = _incremental_project(make_project, "delete+insert")
    assert build(root).success
    (root / "seeds/src.csv").write_text("id,val\n1,a\n2,B\n3,c\n")
    assert build(root).success
    assert query(root, "select * from inc order by id") == [(1, "a"), (2, "B"), (3, "c")]


def test_incremental_append_and_full_refresh(make_project):
    root = _incremental_project(make_project, "append", key="none")
    assert build(root).success
    (root / "seeds/src.csv").write_text("id,val\n1,a\n2,b\n3,c\n")
    assert build(root).success
    assert query(root, "select id from inc order by id") == [(1,), (2,), (2,), (3,)]
    assert build(root, full_refresh=True).success
    assert query(root, "select id from inc order by id") == [(1,), (2,), (3,)]


def test_incremental_merge_needs_unique_key(make_project):
    root = _incremental_project(make_project, "merge", key="none")
    report = build(root)
    assert not report.success
    assert "needs a unique_key" in [r for r in report.results if r.name == "inc"][0].message


def test_ephemeral_is_inlined(make_project):
    root = make_project({
        "models/base.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as id union all select 2",
        "models/mid.sql": "{{ config(materialized='ephemeral') }}\nwith x as (select * from {{ ref('base') }}) select id * 10 as id from x",
        "models/final.sql": "{{ config(materialized='table') }}\nwith y as (select * from {{ ref('mid') }})\nselect sum(id) as s from y",
    })
    assert build(root, "run").success
    assert query(root, "select * from final") == [(30,)]
    assert query(root, "select count(*) from information_schema.tables where table_name in ('base','mid')") == [(0,)]
    compiled = (root / "target/compiled/proj/models/final.sql").read_text()
    assert "__sqlsynth_eph_base" in compiled and "__sqlsynth_eph_mid" in compiled


def test_external_jsonl_and_view_over_file(make_project):
    root = make_project({
        "models/chat.sql": """
            {{ config(materialized='external', format='jsonl') }}
            select 1 as id, {'role': 'user', 'content': 'hi'} as message, '{"a": 1}'::json as payload
        """,
        "models/after.sql": "select count(*) as n from {{ ref('chat') }}",
        "models/custom.sql": "{{ config(materialized='external', location='out/data.parquet') }}\nselect 42 as answer",
    })
    report = build(root, "run")
    assert report.success, report.results
    lines = (root / "target/exports/chat.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "message": {"role": "user", "content": "hi"}, "payload": {"a": 1}}]
    assert query(root, "select * from after") == [(1,)]
    assert (root / "out/data.parquet").exists()
    assert query(root, "select * from custom") == [(42,)]


def test_schema_config_creates_schema(make_project):
    root = make_project({
        "project.yml": "name: proj\nmodels:\n  marts:\n    +schema: analytics\n    +materialized: table\n",
        "models/marts/m.sql": "select 1 as x",
    })
    assert build(root, "run").success
    assert query(root, "select * from analytics.m") == [(1,)]


def test_threads_build_independent_branches(make_project):
    files = {f"models/m{i}.sql": f"{{{{ config(materialized='table') }}}}\nselect {i} as id" for i in range(8)}
    files["models/all.sql"] = " union all ".join(f"select * from {{{{ ref('m{i}') }}}}" for i in range(8))
    root = make_project(files)
    report = build(root, "run", threads=4)
    assert report.success
    assert statuses(report)["all"] == "success"
    assert query(root, "select sum(id) from \"all\"") == [(28,)]


def test_unchanged_export_keeps_its_mtime(make_project):
    import os
    root = make_project({"models/e.sql": "{{ config(materialized='external', format='csv') }}\nselect {{ var('v', 1) }} as x"})
    assert build(root, "run").success
    path = root / "target/exports/e.csv"
    os.utime(path, (1_000_000, 1_000_000))
    assert build(root, "run").success
    assert path.stat().st_mtime == 1_000_000
    assert build(root, "run", vars={"v": 2}).success
    assert path.stat().st_mtime > 1_000_000 and path.read_text().splitlines() == ["x", "2"]


def test_memory_limit_applies(make_project):
    root = make_project({"project.yml": "name: proj\nmemory_limit: 123MB\n",
                         "models/m.sql": "{{ config(materialized='table') }}\nselect current_setting('memory_limit') as m"})
    assert build(root, "run").success
    assert query(root, "select m from m")[0][0].startswith("117.")  # DuckDB shows MiB
