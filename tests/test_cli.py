"""The real `sqlsynth` entry point: commands, artifacts, exit codes, and bad input without tracebacks."""

import json
import subprocess
import sys

import pytest

from conftest import count_rows as _count
from conftest import run_cli
from conftest import write_file as _write


def assert_clean_error(result, *needles, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_help_is_fast_and_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("init", "seed", "run", "test", "build", "compile", "show", "ls", "clean"):
        assert command in result.stdout


def test_help_does_not_import_heavy_modules():
    code = "import sys; from sqlsynth import cli; print(','.join(m for m in ('torch','transformers','duckdb','sqlglot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_init_then_build(tmp_path):
    assert run_cli("init", "my_project", cwd=tmp_path).returncode == 0
    project = tmp_path / "my_project"
    result = run_cli("build", "--exclude", "tag:llm", cwd=project)  # the LLM part: test_dbt_init.py
    assert result.returncode == 0, result.stderr
    assert "Done" in result.stderr and "ERROR" not in result.stderr
    results = json.loads((project / "target/run_results.json").read_text())
    assert {r["status"] for r in results["results"]} <= {"success", "pass"}
    manifest = json.loads((project / "target/manifest.json").read_text())
    orders = manifest["nodes"]["model.my_project.customer_orders"]
    assert orders["config"]["materialized"] == "table"
    assert "model.my_project.stg_orders" in orders["depends_on"]["nodes"]
    assert "select" in orders["compiled_code"].lower()
    assert manifest["nodes"]["model.my_project.stg_customers"]["columns"]["customer_id"]["name"] == "customer_id"
    # the file is closed and unlocked after the command: another process can open it read-write
    import duckdb
    con = duckdb.connect(str(project / "target/my_project.duckdb"))
    assert con.execute("select count(*) from customer_orders").fetchall() == [(4,)]
    con.close()


def test_show_ls_compile_clean(fixture_project):
    root = fixture_project("jaffle")
    assert run_cli("build", "--project-dir", str(root)).returncode == 0
    shown = run_cli("show", "customers", "--limit", "3", "--output", "json", "--project-dir", str(root))
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 3
    inline = run_cli("show", "select count(*) as n from {{ ref('orders') }}", "--output", "csv", cwd=root)
    assert inline.stdout.splitlines() == ["n", "99"]
    listed = run_cli("ls", "-s", "+orders", "--resource-type", "model", cwd=root)
    assert listed.stdout.split() == ["model:stg_orders", "model:stg_payments", "model:orders"]
    compiled = run_cli("compile", "-s", "orders", cwd=root)
    assert "credit_card_amount" in compiled.stdout and "{%" not in compiled.stdout
    assert run_cli("clean", cwd=root).returncode == 0
    assert not (root / "target/compiled").exists() and (root / "target/jaffle_shop.duckdb").exists()


def test_jaffle_shop_builds_and_tests_unchanged(fixture_project):
    root = fixture_project("jaffle")
    result = run_cli("build", cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads((root / "target/run_results.json").read_text())
    statuses = [r["status"] for r in data["results"]]
    assert statuses.count("success") == 8 and "error" not in statuses and "fail" not in statuses
    assert any(r["unique_id"].startswith("test.jaffle_shop.relationships") for r in data["results"])
    assert run_cli("test", cwd=root).returncode == 0


BAD_INPUTS = [
    ("malformed_yaml", "project.yml", "name: small\nvars: [1, 2\n", ["project.yml:", "malformed YAML"]),
    ("unknown_key", "project.yml", "name: small\nmodle-paths: [models]\n", ["project.yml:2", "unknown key", "model-paths"]),
    ("unknown_ref", "models/b.sql", "select * from {{ ref('aa') }}", ["models/b.sql:1", "unknown ref 'aa'", "did you mean 'a'"]),
    ("package_ref", "models/b.sql", "select * from {{ ref('dbt_utils', 'a') }}",
     ["models/b.sql:1", "no package 'dbt_utils'", "ref('a')"]),
    ("cycle", "models/a.sql", "select * from {{ ref('b') }}", ["dependency cycle", "->"]),
    ("syntax_error", "models/b.sql", "select id,\nfrom from {{ ref('a') }}", ["models/b.sql:2", "syntax error"]),
    ("undefined_var", "models/b.sql", "select {{ var('x') }} as id", ["models/b.sql:1", "undefined var 'x'"]),
    ("missing_env_var", "models/b.sql", "select '{{ env_var('SQLSYNTH_ABSENT') }}' as id", ["SQLSYNTH_ABSENT"]),
    ("broken_schema_yml", "models/schema.yml", "version: 2\nmodels:\n  - name: a\n    colums: []\n", ["models/schema.yml:4", "colums"]),
]


@pytest.mark.parametrize("case,rel,text,needles", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_clear_error_and_tables_intact(small, case, rel, text, needles):
    _write(small, rel, text)
    result = run_cli("build", cwd=small)
    assert_clean_error(result, *needles)
    assert _count(small, "b") == 2 and _count(small, "a") == 2


def test_runtime_error_mid_build_keeps_tables_and_skips_downstream(small):
    _write(small, "models/a.sql", "{{ config(materialized='table') }}\nselect cast('x' || id as int) as id from {{ ref('s') }}")
    result = run_cli("build", cwd=small)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "models/a.sql" in result.stderr and "SKIP" in result.stderr
    assert _count(small, "a") == 2 and _count(small, "b") == 2
    data = json.loads((small / "target/run_results.json").read_text())
    by_id = {r["unique_id"]: r["status"] for r in data["results"]}
    assert by_id["model.small.a"] == "error" and by_id["model.small.b"] == "skipped"


def test_ragged_csv(small):
    _write(small, "seeds/s.csv", "id\n1\n2,3\n")
    result = run_cli("seed", cwd=small)
    assert_clean_error(result, "seeds/s.csv:3", code=1)
    assert _count(small, "s") == 2


def test_selection_matching_nothing(small):
    assert_clean_error(run_cli("run", "-s", "zzz", cwd=small), "matched no model")


def test_bad_vars_flag(small):
    result = run_cli("run", "--vars", "[1", cwd=small)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_database_locked_by_other_process(small):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
         str(small / "target/small.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run_cli("run", cwd=small)
        assert_clean_error(result, "locked by process", str(holder.pid))
    finally:
        holder.kill()
        holder.wait()


def test_ref_with_the_projects_own_name_resolves(small):
    _write(small, "models/b.sql", "{{ config(materialized='table') }}\nselect id * 3 as id from {{ ref('small', 'a') }}")
    result = run_cli("build", cwd=small)
    assert result.returncode == 0, result.stderr
    assert _count(small, "b") == 2
