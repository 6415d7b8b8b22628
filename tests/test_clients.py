"""Other clients on the database file: the registry's DuckDB 1.5 CLI, moved folders, read-only show."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

DUCKDB_CLI = Path(sys.executable).parent / "duckdb"  # the duckdb-cli package (dev extra)

EXPORT_PROJECT = {
    "models/answers.sql": "select 1 as id, 'hello' as answer union all select 2, 'world'",
    "models/answers_jsonl.sql": "{{ config(materialized='external', format='jsonl') }}\n"
                                "select * from {{ ref('answers') }} order by id",
    "models/custom.sql": "{{ config(materialized='external', location='out/custom.parquet') }}\nselect 42 as x",
}


def _duckdb_cli(database: Path, sql: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(DUCKDB_CLI), "-readonly", "-csv", str(database), "-c", sql], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def built(make_project, cli):
    root = make_project({**EXPORT_PROJECT, "models/answers.sql": EXPORT_PROJECT["models/answers.sql"]})
    result = cli("build", "--project-dir", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_registry_duckdb_cli_reads_a_fresh_database(built):
    assert DUCKDB_CLI.exists(), "install the dev extra (duckdb-cli)"
    version = subprocess.run([str(DUCKDB_CLI), "--version"], capture_output=True, text=True).stdout
    assert version.startswith("v1."), version
    database = built / "target" / "proj.duckdb"
    # From the database's folder the export views' relative paths resolve in any client.
    result = _duckdb_cli(database, "select count(*) from answers; select answer from answers_jsonl order by id; "
                                   "select x from custom", cwd=database.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["count_star()", "2", "answer", "hello", "world", "x", "42"]


def _written_format(database: Path) -> str:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute("select tags['storage_version'] from duckdb_databases() "
                           "where database_name = current_database()").fetchone()[0]
    finally:
        con.close()


def test_latest_writes_the_running_duckdbs_newer_format(built, make_project, cli):
    root = make_project({"project.yml": "name: proj\nstorage_compatibility_version: latest\n",
                         "models/t.sql": "select 1 as x"}, name="latest")
    assert cli("build", "--project-dir", str(root)).returncode == 0
    latest, default = _written_format(root / "target" / "proj.duckdb"), _written_format(built / "target" / "proj.duckdb")
    assert default.startswith("v1.4.0") and latest.startswith(f"v{'.'.join(duckdb.__version__.split('.')[:2])}")
    # the running DuckDB (1.5.5) writes a format the registry's 1.5.6 CLI still reads
    result = _duckdb_cli(root / "target" / "proj.duckdb", "select * from t", cwd=root)
    assert result.returncode == 0 and result.stdout.split() == ["x", "1"], result.stderr


def test_unknown_storage_version_is_one_short_message(make_project, cli):
    root = make_project({"project.yml": "name: proj\nstorage_compatibility_version: v9.9.9\n",
                         "models/t.sql": "select 1 as x"})
    result = cli("build", "--project-dir", str(root))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "v9.9.9" in output and "storage_compatibility_version" in output


def test_moving_the_project_folder_keeps_export_views_working(built, tmp_path, cli):
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(built), str(moved))
    assert not built.exists()
    result = cli("show", "answers_jsonl", "--project-dir", str(moved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello" in result.stdout and "world" in result.stdout
    # A plain DuckDB client: relative to the database's folder (its cwd, or file_search_path).
    con = duckdb.connect(str(moved / "target" / "proj.duckdb"), read_only=True)
    try:
        con.execute("set file_search_path = ?", [str(moved / "target")])
        assert con.execute("select x from custom").fetchall() == [(42,)]
    finally:
        con.close()


def test_show_reads_while_another_client_holds_the_file_read_only(built, cli):
    holder = duckdb.connect(str(built / "target" / "proj.duckdb"), read_only=True)
    try:
        by_name = cli("show", "answers", "--project-dir", str(built))
        inline = cli("show", "select count(*) as n from {{ ref('answers') }}", "--project-dir", str(built))
    finally:
        holder.close()
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    assert "hello" in by_name.stdout
    assert inline.returncode == 0, inline.stdout + inline.stderr
    assert " 2 " in inline.stdout


def test_an_older_format_setting_warns_about_a_file_written_newer(make_project, cli):
    root = make_project({"project.yml": "name: proj\nstorage_compatibility_version: latest\n",
                         "models/t.sql": "select 1 as x"})
    assert cli("build", "--project-dir", str(root)).returncode == 0
    (root / "project.yml").write_text("name: proj\n")  # back to the default, v1.4.0
    rebuilt = cli("build", "--project-dir", str(root))
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "newer than storage_compatibility_version v1.4.0" in rebuilt.stderr
    assert "clean --include-database" in rebuilt.stderr
    fresh = make_project({"models/t.sql": "select 1 as x"}, name="fresh")
    assert "storage format" not in cli("build", "--project-dir", str(fresh)).stderr
