"""Issue 13 item 12: each mistake gets one correct message (right file, no internals) and exit code.

Every case goes through the real `sqlsynth` entry point against the small built project.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import count_rows, run_cli, write_file


def assert_clean_error(result, *needles, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    output = result.stderr + result.stdout
    for leak in ("Traceback", "Internal error", "<Token", "<class", "sqlsynth_ai_query", "Python exception"):
        assert leak not in output, output
    for needle in needles:
        assert needle in output, output


def test_exclude_everything_is_an_empty_selection(small):
    assert_clean_error(run_cli("run", "--exclude", "*", cwd=small), "--exclude * left no model to run")
    assert run_cli("run", "--exclude", "a", cwd=small).returncode == 0  # leaving something is fine


def test_missing_model_paths_folder_is_named(small):
    write_file(small, "project.yml", "name: small\nmodel-paths: [models, missing_dir]\n")
    assert_clean_error(run_cli("build", cwd=small), "project.yml:2", "folder 'missing_dir' does not exist")
    assert count_rows(small, "b") == 2


def test_folder_config_for_a_missing_folder_warns_with_did_you_mean(small):
    (small / "models/staging").mkdir()
    write_file(small, "project.yml", "name: small\nmodels:\n  small:\n    stagin:\n      +materialized: view\n")
    result = run_cli("ls", cwd=small)
    assert result.returncode == 0, result.stderr
    assert "project.yml:4" in result.stderr and "no folder stagin" in result.stderr
    assert "did you mean 'staging'" in result.stderr


def test_binder_error_in_an_ephemeral_model_blames_its_file(small):
    write_file(small, "models/e.sql", "{{ config(materialized='ephemeral') }}\nselect nosuchcol from {{ ref('s') }}")
    write_file(small, "models/c.sql", "{{ config(materialized='table') }}\nselect * from {{ ref('e') }}")
    result = run_cli("run", "-s", "c", cwd=small)
    assert_clean_error(result, "models/e.sql:2", "nosuchcol", code=1)
    assert "models/c.sql" not in result.stderr.split("ERROR c:")[-1]


def test_binder_error_in_the_model_itself_keeps_its_line(small):
    write_file(small, "models/e.sql", "{{ config(materialized='ephemeral') }}\nselect id from {{ ref('s') }}")
    write_file(small, "models/c.sql", "{{ config(materialized='table') }}\nselect *,\n  nosuch\nfrom {{ ref('e') }}")
    assert_clean_error(run_cli("run", "-s", "c", cwd=small), "models/c.sql:3", "nosuch", code=1)


def test_ref_to_a_disabled_model_says_so(small):
    write_file(small, "models/d.sql", "{{ config(enabled=false) }}\nselect 1 as id")
    write_file(small, "models/c.sql", "select * from {{ ref('d') }}")
    assert_clean_error(run_cli("run", cwd=small), "models/c.sql:1", "disabled", "models/d.sql has enabled=false")


def test_unknown_incremental_strategy_lists_the_valid_ones(small):
    write_file(small, "models/c.sql", "{{ config(materialized='incremental', incremental_strategy='nope') }}\n"
                                      "select 1 as id")
    assert_clean_error(run_cli("run", "-s", "c", cwd=small), "models/c.sql", "'nope'",
                       "append, delete+insert, merge", code=1)


def test_bad_unique_key_names_the_model_and_column(small):
    write_file(small, "models/c.sql", "{{ config(materialized='incremental', unique_key='idd') }}\n"
                                      "select 1 as id")
    assert run_cli("run", "-s", "c", cwd=small).returncode == 0  # the first build creates the table
    result = run_cli("run", "-s", "c", cwd=small)
    assert_clean_error(result, "models/c.sql", "unique_key 'idd' of model c", "did you mean 'id'", code=1)
    assert '"target"' not in result.stderr and count_rows(small, "c") == 1


def test_cache_clear_unknown_endpoint_lists_the_endpoints(small):
    result = run_cli("cache", "clear", "--endpoint", "nosuch", cwd=small)
    assert_clean_error(result, "--endpoint nosuch", "known: default")


@pytest.mark.parametrize("sql,needle", [
    ("select * from s where", "WHERE is incomplete"),
    ("select * from s order by", "ORDER is incomplete"),
    ("select * from", "got the end of the query"),
    ("select from where", "got 'where'"),
], ids=["where", "order_by", "from", "token"])
def test_syntax_errors_show_no_parser_internals(small, sql, needle):
    write_file(small, "models/c.sql", sql)
    assert_clean_error(run_cli("run", cwd=small), "models/c.sql:1", "SQL syntax error", needle)


@pytest.mark.parametrize("sql,needle", [
    ("select ai_query('default', 1) as x", "ai_query request must be a string"),
    ("select ai_query(1, 'x') as x", "ai_query(endpoint, request, ...) got arguments of the wrong type"),
], ids=["request_type", "endpoint_type"])
def test_ai_query_errors_via_show_read_as_sqlsynth_messages(small, sql, needle):
    assert_clean_error(run_cli("show", "--inline", sql, cwd=small), "<inline>", needle, code=1)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "sigint"])
def test_sigterm_stops_a_running_statement_like_ctrl_c(small, signum, code):
    write_file(small, "models/slow.sql", "{{ config(materialized='table') }}\n"
                                         "select sum(i) as n from range(1000000000000) t(i)")
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sqlsynth", "run", "-s", "slow"], cwd=small, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # the long statement is running
    proc.send_signal(signum)
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Interrupted. Completed nodes are kept; re-run to continue." in err
    assert "Traceback" not in err and "Internal error" not in err
    assert count_rows(small, "b") == 2


def test_clean_removes_a_symlink_in_target_not_what_it_points_to(small, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    keep = write_file(outside, "keep.txt", "not sqlsynth's")
    (small / "target" / "linked").symlink_to(outside, target_is_directory=True)
    (small / "target" / "linked_file").symlink_to(keep)
    result = run_cli("clean", cwd=small)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert keep.read_text() == "not sqlsynth's"
    assert not (small / "target" / "linked").is_symlink() and not (small / "target" / "linked_file").is_symlink()
