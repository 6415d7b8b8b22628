"""Issue 13: bad input and faults lose nothing, leak nothing and never end in an internal error.

Every case goes through the real `sqlsynth` entry point against a small built project.
"""

import subprocess
import sys

import duckdb
import pytest

from conftest import count_rows as _count
from conftest import run_cli
from conftest import write_file as _write


def assert_clean_error(result, *needles, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    output = result.stderr + result.stdout
    assert "Traceback" not in output and "Internal error" not in output, output
    for needle in needles:
        assert needle in output, output


# ---------------------------------------------------------------------------------------------
# 1. clean takes the build's lock


@pytest.fixture
def database_holder(small):
    """Another process holding the database's write lock, as a running build does."""
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(small / "target/small.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    yield holder
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("flags", [[], ["--include-database"]], ids=["target", "include_database"])
def test_clean_refuses_while_a_build_holds_the_lock(small, database_holder, flags):
    result = run_cli("clean", *flags, cwd=small)
    assert_clean_error(result, "locked by process", str(database_holder.pid))
    assert (small / "target/small.duckdb").exists() and (small / "target/manifest.json").exists()


def test_clean_include_database_removes_it_when_free(small):
    result = run_cli("clean", "--include-database", cwd=small)
    assert result.returncode == 0, result.stderr
    assert not (small / "target").exists()


# ---------------------------------------------------------------------------------------------
# 2. identifiers are quoted, never spliced


def test_alias_with_quotes_cannot_inject_sql(small):
    _write(small, "models/c.sql", """
        {{ config(materialized='table', alias='x" as select 1; drop table s; create view "y') }}
        select 7 as id
        """)
    result = run_cli("build", cwd=small)
    assert result.returncode == 0, result.stderr
    assert _count(small, "s") == 2  # the seed is still there
    assert _count(small, 'x" as select 1; drop table s; create view "y') == 1


def test_schema_with_quotes_is_one_identifier(small):
    _write(small, "models/c.sql", "{{ config(materialized='view', schema='odd\"name') }}\nselect 1 as id")
    result = run_cli("run", "-s", "c", cwd=small)
    assert result.returncode == 0, result.stderr
    assert _count(small, "c", schema='odd"name') == 1


@pytest.mark.parametrize("filename", ["my model.sql", "it's.sql", "a+b.sql"])
def test_model_name_that_cannot_be_selected_is_rejected(small, filename):
    _write(small, f"models/{filename}", "select 1 as id")
    result = run_cli("ls", cwd=small)
    assert_clean_error(result, f"models/{filename}", "--select could never pick it", "rename the file")
    assert _count(small, "b") == 2


# ---------------------------------------------------------------------------------------------
# 3. a failing post_hook undoes the model's swap


@pytest.mark.parametrize("materialized", ["table", "incremental", "view"])
def test_failing_post_hook_leaves_previous_relation(small, materialized):
    _write(small, "models/b.sql", f"""
        {{{{ config(materialized='{materialized}', post_hook="insert into no_such_table values (1)") }}}}
        select 99 as id from range(5)
        """)
    result = run_cli("run", "-s", "b", cwd=small)
    assert_clean_error(result, "ERROR", "no_such_table", code=1)
    con = duckdb.connect(str(small / "target/small.duckdb"), read_only=True)
    try:
        assert con.execute("select list(id order by id) from b").fetchall() == [([2, 4],)]
        assert con.execute("select table_type from information_schema.tables "
                           "where table_name = 'b'").fetchall() == [("BASE TABLE",)]
    finally:
        con.close()


def test_post_hook_sees_the_new_table(small):
    _write(small, "models/b.sql", """
        {{ config(materialized='table', post_hook="delete from b where id > 100") }}
        select * from (values (1), (200)) as t(id)
        """)
    assert run_cli("run", "-s", "b", cwd=small).returncode == 0
    assert _count(small, "b") == 1


# ---------------------------------------------------------------------------------------------
# 6. YAML alias bombs and oversized files are refused before they exhaust memory

_BOMB = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                  + [f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)])


def test_yaml_alias_bomb_under_vars_is_refused(small):
    _write(small, "project.yml", "name: small\nvars:\n" + "\n".join("  " + line.strip() if i == 0 else line
                                                                      for i, line in enumerate(_BOMB.splitlines())))
    result = run_cli("build", cwd=small, timeout=60)
    assert_clean_error(result, "project.yml:2", "expands to more than 1,000,000 values")
    assert _count(small, "b") == 2


@pytest.mark.parametrize("command", ["run", "plan"])
def test_yaml_alias_bomb_in_vars_flag_is_refused(small, command):
    flow = "{" + ", ".join(line.strip() for line in _BOMB.splitlines()) + "}"
    result = run_cli(command, "--vars", flow, cwd=small, timeout=60)
    assert_clean_error(result, "--vars", "expands to more than")


def test_oversized_schema_yaml_is_refused(small):
    (small / "models/big.yml").write_text("version: 2\n# " + "x" * (21 * 1024 * 1024) + "\n")
    result = run_cli("ls", cwd=small)
    assert_clean_error(result, "models/big.yml", "MiB limit")


# ---------------------------------------------------------------------------------------------
# 5. external models write outside the project only on request, and never over a stranger's file


def _external(small, location, allow=False, value=1):
    opt_in = ", allow_outside_project=true" if allow else ""
    _write(small, "models/out.sql", f"{{{{ config(materialized='external', location='{location}'{opt_in}) }}}}\n"
                                    f"select {value} as id")


def test_external_outside_project_needs_opt_in(small, tmp_path):
    target = tmp_path / "elsewhere" / "out.jsonl"
    _external(small, target)
    result = run_cli("run", "-s", "out", cwd=small)
    assert_clean_error(result, "models/out.sql", "outside the project folder", "allow_outside_project=true", code=1)
    assert not target.exists()


def test_external_never_replaces_a_file_it_did_not_write(small, tmp_path):
    target = tmp_path / "notes.jsonl"
    target.write_text("precious\n")
    _external(small, target, allow=True)
    result = run_cli("run", "-s", "out", cwd=small)
    assert_clean_error(result, "was not written by sqlsynth", "move or delete that file", code=1)
    assert target.read_text() == "precious\n"


def test_external_outside_project_replaces_its_own_file_until_someone_edits_it(small, tmp_path):
    target = tmp_path / "exports" / "out.jsonl"
    _external(small, target, allow=True, value=1)
    assert run_cli("run", "-s", "out", cwd=small).returncode == 0
    _external(small, target, allow=True, value=2)
    assert run_cli("run", "-s", "out", cwd=small).returncode == 0
    assert target.read_text().strip() == '{"id":2}'
    target.write_text('{"id":"edited by hand"}\n')
    result = run_cli("run", "-s", "out", cwd=small)
    assert_clean_error(result, "was not written by sqlsynth (or was changed since)", code=1)
    assert "edited by hand" in target.read_text()


def test_alias_cannot_escape_the_project_through_the_default_export_path(small):
    _write(small, "models/out.sql", "{{ config(materialized='external', alias='../../../escaped') }}\nselect 1 as id")
    result = run_cli("run", "-s", "out", cwd=small)
    assert_clean_error(result, "outside the project folder", code=1)
    assert not (small.parent / "escaped.parquet").exists()


def test_target_path_outside_the_project_still_takes_default_exports(small, tmp_path):
    _write(small, "models/out.sql", "{{ config(materialized='external', format='jsonl') }}\nselect 1 as id")
    outside = tmp_path / "build_output"
    result = run_cli("run", "-s", "out", "--target-path", str(outside), cwd=small)
    assert result.returncode == 0, result.stderr
    assert (outside / "exports/out.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# 12. messages and exit codes


@pytest.mark.parametrize("args,needle", [
    (["show", "a", "--limit", "-1"], "--limit"),
    (["run", "--threads", "0"], "--threads"),
    (["build", "--threads", "-2"], "--threads"),
    (["retry", "--threads", "0"], "--threads"),
], ids=["show_limit_negative", "run_threads_zero", "build_threads_negative", "retry_threads_zero"])
def test_out_of_range_numbers_are_cli_errors(small, args, needle):
    result = run_cli(*args, cwd=small)
    assert_clean_error(result, needle, "Invalid value")
    assert _count(small, "b") == 2


# ---------------------------------------------------------------------------------------------
# 7. environment problems are one message naming the path or setting, exit 2, no internal error


def test_target_path_that_is_a_file(small):
    (small / "afile").write_text("x\n")
    result = run_cli("build", "--target-path", "afile", cwd=small)
    assert_clean_error(result, "afile", "--target-path")
    assert (small / "afile").read_text() == "x\n"


def test_memory_limit_too_small(small):
    _write(small, "project.yml", "name: small\nmemory_limit: 1MB\n")
    result = run_cli("build", cwd=small)
    assert_clean_error(result, "project.yml", "memory_limit: 1MB", "raise memory_limit")
    assert _count(small, "b") == 2

