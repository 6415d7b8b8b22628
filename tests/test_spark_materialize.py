"""Incremental and external models on real Apache Spark (local mode), one session for the module."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from sqlsynth.errors import ConfigError
from sqlsynth.node_types import Status

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark local mode needs Java 17 (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

MODELS = {
    "inc_append.sql": """{{ config(materialized='incremental', incremental_strategy='append') }}
select id, v from {{ ref('events') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}""",
    "inc_replace.sql": """{{ config(materialized='incremental', unique_key='id', incremental_strategy='delete+insert') }}
select id, v from {{ ref('events') }}
{% if is_incremental() %}where id >= 2{% endif %}""",
    "inc_overwrite.sql": """{{ config(materialized='incremental', incremental_strategy='insert_overwrite',
                                       partition_by='day') }}
select id, v, day from {{ ref('events') }}
{% if is_incremental() %}where day = 2{% endif %}""",
    "export.sql": """{{ config(materialized='external', format='jsonl', location='target/exports/events.jsonl') }}
select id, struct(v as value, day as day) as info from {{ ref('events') }} order by id""",
}


def write_events(project: Path, rows: list[tuple[int, str, int]]) -> None:
    with open(project / "seeds" / "events.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "v", "day"])
        writer.writerows(rows)


def execute(project: Path, *select: str, full_refresh: bool = False):
    from sqlsynth.api import Options, execute
    from sqlsynth.run_progress import Reporter

    options = Options(project_dir=project, select=list(select), target_name="spark", full_refresh=full_refresh)
    return execute("build", options, Reporter(quiet=True))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparkinc") / "p"
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "project.yml").write_text("name: p\ntargets:\n  spark:\n    type: spark\n    remote: local[2]\n")
    for name, sql in MODELS.items():
        (root / "models" / name).write_text(sql)
    write_events(root, [(1, "a", 1), (2, "b", 1), (3, "c", 2)])
    report = execute(root)
    assert [r.status for r in report.results if r.status != Status.SUCCESS] == [], [r.message for r in report.results]
    write_events(root, [(1, "A", 1), (2, "B", 1), (3, "C", 2), (4, "D", 2)])
    report = execute(root)
    assert [r.status for r in report.results if r.status != Status.SUCCESS] == [], [r.message for r in report.results]
    return root


def rows(table: str) -> list[tuple]:
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    spark.catalog.refreshTable(table)
    return sorted(tuple(r) for r in spark.table(table).collect())


def test_append_adds_only_new_rows(project):
    assert rows("main.inc_append") == [(1, "a"), (2, "b"), (3, "c"), (4, "D")]


def test_delete_insert_replaces_matching_keys_on_parquet(project):
    assert rows("main.inc_replace") == [(1, "a"), (2, "B"), (3, "C"), (4, "D")]


def test_insert_overwrite_replaces_the_partitions_it_writes(project):
    assert rows("main.inc_overwrite") == [(1, "a", 1), (2, "b", 1), (3, "C", 2), (4, "D", 2)]


def test_full_refresh_rebuilds(project):
    report = execute(project, "inc_replace", full_refresh=True)
    assert [r.status for r in report.results] == [Status.SUCCESS]
    assert rows("main.inc_replace") == [(1, "A"), (2, "B"), (3, "C"), (4, "D")]


def test_external_jsonl_is_one_file_in_the_query_order(project):
    lines = (project / "target/exports/events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "info": {"value": "A", "day": 1}}, {"id": 2, "info": {"value": "B", "day": 1}},
        {"id": 3, "info": {"value": "C", "day": 2}}, {"id": 4, "info": {"value": "D", "day": 2}}]
    assert rows("main.export")[0][0] == 1


def test_merge_on_parquet_is_a_clear_compile_error(project):
    model = project / "models" / "inc_merge.sql"
    model.write_text("{{ config(materialized='incremental', unique_key='id') }}\nselect id from {{ ref('events') }}")
    try:
        with pytest.raises(ConfigError) as info:  # the whole command stops before anything runs (exit 2)
            execute(project, "inc_merge")
    finally:
        model.unlink()
    message = info.value.format()
    assert "models/inc_merge.sql" in message and "table_format delta or iceberg" in message
    assert "delete+insert" in message
