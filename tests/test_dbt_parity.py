"""dbt habits that work the same in sqlsynth (issue 16): selection syntax, show/compile/ls, retry, debug."""

import json
import re
from pathlib import Path

import pytest

from conftest import run_cli


@pytest.fixture
def jaffle(fixture_project):
    return fixture_project("jaffle")


def _names(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def test_space_separated_selectors_after_one_flag(jaffle):
    one_flag = run_cli("ls", "--resource-type", "model", "-s", "stg_customers", "stg_orders", cwd=jaffle)
    repeated = run_cli("ls", "--resource-type", "model", "-s", "stg_customers", "-s", "stg_orders", cwd=jaffle)
    assert _names(one_flag) == _names(repeated) == ["model:stg_customers", "model:stg_orders"]


def test_models_alias_and_space_separated_exclude(jaffle):
    result = run_cli("ls", "-m", "stg_customers", "stg_orders", "orders", "--exclude", "stg_orders", "orders",
                     "--resource-type", "model", cwd=jaffle)
    assert _names(result) == ["model:stg_customers"]


def test_run_selects_several_models_with_one_flag(jaffle):
    assert run_cli("seed", cwd=jaffle).returncode == 0
    result = run_cli("run", "--select", "stg_customers", "stg_orders", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    ran = {r["unique_id"].split(".")[-1] for r in json.loads((jaffle / "target/run_results.json").read_text())["results"]}
    assert ran == {"stg_customers", "stg_orders"}


def test_show_select_and_inline(jaffle):
    assert run_cli("build", cwd=jaffle).returncode == 0
    by_select = run_cli("show", "-s", "customers", "--limit", "2", "--output", "json", cwd=jaffle)
    assert by_select.returncode == 0, by_select.stderr
    assert len(json.loads(by_select.stdout)) == 2
    inline = run_cli("show", "--inline", "select count(*) as n from {{ ref('orders') }}", "--output", "csv",
                     cwd=jaffle)
    assert inline.returncode == 0, inline.stderr
    assert inline.stdout.split() == ["n", "99"]
    neither = run_cli("show", cwd=jaffle)
    assert neither.returncode == 2 and "--inline" in neither.stderr and "Traceback" not in neither.stderr


def test_show_and_inline_name_what_is_missing(jaffle):
    """Not a Catalog Error or an AttributeError: which name is unknown, or that the model is not built."""
    not_built = run_cli("show", "-s", "orders", cwd=jaffle)
    assert not_built.returncode == 1 and "model 'orders' is not built yet" in not_built.stderr
    assert "sqlsynth build -s orders" in not_built.stderr
    for args in (["show", "-s", "ordrs"], ["show", "ordrs"]):
        unknown = run_cli(*args, cwd=jaffle)
        assert unknown.returncode == 2 and "no model, seed or relation named 'ordrs'" in unknown.stderr
        assert "did you mean 'orders'" in unknown.stderr
    for command in ("show", "compile"):
        bad_ref = run_cli(command, "--inline", "select * from {{ ref('ordrs') }}", cwd=jaffle)
        assert bad_ref.returncode == 2 and "unknown ref 'ordrs'" in bad_ref.stderr, bad_ref.stderr
        assert "did you mean 'orders'" in bad_ref.stderr and "Error" not in bad_ref.stderr.replace("Error:", "")


def test_compile_inline_resolves_refs(jaffle):
    result = run_cli("compile", "--inline", "select * from {{ ref('stg_orders') }}", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    assert "{{" not in result.stdout and "stg_orders" in result.stdout


def test_ls_json_has_dbt_keys_and_output_keys(jaffle):
    result = run_cli("ls", "-s", "orders", "--resource-type", "model", "--output", "json", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    node = json.loads(result.stdout)
    assert node["unique_id"] == "model.jaffle_shop.orders" and node["package_name"] == "jaffle_shop"
    assert node["original_file_path"] == "models/marts/orders.sql" and node["config"]["materialized"] == "table"
    assert "model.jaffle_shop.stg_orders" in node["depends_on"]["nodes"]
    picked = run_cli("ls", "-s", "orders", "--resource-type", "model", "--output", "json",
                     "--output-keys", "name", "unique_id", cwd=jaffle)
    assert json.loads(picked.stdout) == {"name": "orders", "unique_id": "model.jaffle_shop.orders"}
    bad = run_cli("ls", "--output", "json", "--output-keys", "nmae", cwd=jaffle)
    assert bad.returncode == 2 and "nmae" in bad.stderr


def test_depends_on_macros_names_the_macros_a_node_calls(jaffle):
    """dbt's depends_on.macros, in `ls --output json` and manifest.json: project and built-in macros."""
    result = run_cli("ls", "-s", "stg_payments", "unique_orders_order_id", "--output", "json",
                     "--output-keys", "name", "depends_on", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    macros = {row["name"]: row["depends_on"]["macros"] for row in map(json.loads, result.stdout.splitlines())}
    assert macros["stg_payments"] == ["macro.jaffle_shop.cents_to_dollars"]
    assert macros["unique_orders_order_id"] == ["macro.sqlsynth.test_unique"]
    assert macros["assert_total_payment_amount_is_positive"] == []
    manifest = json.loads((jaffle / "target/manifest.json").read_text())
    assert manifest["nodes"]["model.jaffle_shop.stg_payments"]["depends_on"]["macros"] == [
        "macro.jaffle_shop.cents_to_dollars"]


STARTER_KEYS = """
analysis-paths: ["analyses"]
snapshot-paths: ["snapshots"]
clean-targets: ["target", "dbt_packages"]
on-run-start:
  - "create table if not exists run_log (event varchar, n int)"
  - "insert into run_log values ('start', {{ var('n', 1) }})"
on-run-end: "insert into run_log values ('end', 0)"
"""


def test_dbt_starter_keys_accepted_and_run_hooks_run(jaffle):
    project_yml = jaffle / "project.yml"
    project_yml.write_text(project_yml.read_text() + STARTER_KEYS)
    result = run_cli("seed", "--vars", "{n: 7}", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    assert "project.yml:22: 'analysis-paths' is ignored" in result.stderr
    assert "'snapshot-paths' is ignored" in result.stderr
    log = run_cli("show", "--inline", "select event, n from run_log order by event desc", "--output", "csv",
                  cwd=jaffle)
    assert log.stdout.split() == ["event,n", "start,7", "end,0"]


def test_folder_config_one_letter_off_warns_custom_keys_do_not(jaffle):
    project_yml = jaffle / "project.yml"
    text = project_yml.read_text().replace("      +materialized: view", "      +materialised: view\n      +search_column: x")
    project_yml.write_text(text)
    line = text[:text.index("+materialised")].count("\n") + 1
    result = run_cli("ls", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    assert (f"project.yml:{line}: models: '+materialised' is not a config sqlsynth reads, so it changes nothing; "
            "did you mean '+materialized'?") in " ".join(result.stderr.split())
    assert "search_column" not in result.stderr


def test_failing_run_hook_is_a_clear_error(jaffle):
    project_yml = jaffle / "project.yml"
    project_yml.write_text(project_yml.read_text() + "on-run-start: 'select * from no_such_table'\n")
    result = run_cli("seed", cwd=jaffle)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "on-run-start hook 1 failed" in result.stderr and "no_such_table" in result.stderr


def test_on_run_end_sees_invocation_id_of_the_run_results(jaffle):
    project_yml = jaffle / "project.yml"
    project_yml.write_text(project_yml.read_text() + STARTER_KEYS.replace(
        "on-run-end: \"insert into run_log values ('end', 0)\"",
        "on-run-end: \"create table ended as select '{{ invocation_id }}' as id\""))
    result = run_cli("seed", "-s", "raw_customers", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    ended = run_cli("show", "--inline", "select id from ended", "--output", "csv", cwd=jaffle)
    run_results = json.loads((jaffle / "target/run_results.json").read_text())
    assert ended.stdout.split() == ["id", run_results["metadata"]["invocation_id"]]


@pytest.mark.parametrize("key, code", [("on-run-start", 2), ("on-run-end", 1)])
def test_run_hook_that_does_not_render_names_the_hook(jaffle, key, code):
    """Before the run nothing ran (exit 2); after it the seeds did (exit 1, run_results.json written)."""
    project_yml = jaffle / "project.yml"
    project_yml.write_text(project_yml.read_text() + f"{key}: 'select {{{{ no_such_name }}}}'\n")
    result = run_cli("seed", "-s", "raw_customers", cwd=jaffle)
    assert result.returncode == code and "Traceback" not in result.stderr
    assert f"{key} hook 1 does not render: undefined name" in result.stderr
    assert "project.yml:1:" not in result.stderr  # a line of the hook text is not a line of project.yml
    assert (jaffle / "target/run_results.json").exists() == (key == "on-run-end")


def test_torch_is_pinned_only_in_constraints_and_deepspeed_has_its_own_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        assert not [r for r in requirements if re.match(r"torch\s*==", r)], f"exact torch pin in [{name}]"
        if name != "deepspeed":
            assert not [r for r in requirements if r.startswith("deepspeed")], f"deepspeed in [{name}]"
    assert re.search(r"^torch==\S+$", (root / "constraints.txt").read_text(), re.M)
    install = re.search(r"-e '\.\[([^\]]+)\]'", (root / "Makefile").read_text()).group(1).split(",")
    assert set(install) == set(extras)  # make install still installs every extra


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


def test_every_cli_option_has_help_and_summaries_are_whole():
    import click

    from sqlsynth.cli import main

    missing = [f"{' '.join(path)} {param.opts[0]}" for path, command in _commands(main)
               for param in command.params if isinstance(param, click.Option) and not param.help]
    assert missing == []
    for args in (["--help"], ["cache", "--help"]):
        listing = run_cli(*args).stdout.split("Commands:")[1]
        assert "..." not in listing, listing


def test_test_server_flags_have_help():
    from sqlsynth.testing.openai_server import build_parser

    actions = build_parser()._actions
    assert "--rate-429" in {opt for action in actions for opt in action.option_strings}
    assert [action.option_strings for action in actions if not action.help] == []
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-m", "sqlsynth.testing.openai_server", "--help"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "answered 429" in shown.stdout


def test_readme_contents_lists_every_section_and_no_internal_notes():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", text, re.M)
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert [s for s in sections if s != "Contents" and f"[{s}]" not in contents] == []
    assert "for the lead" not in text and "pip install -e '.[local]'" in text


def test_retry_reruns_only_what_failed_or_was_skipped(jaffle):
    broken = jaffle / "models/marts/orders.sql"  # a table: the bad cast fails at build time
    good = broken.read_text()
    broken.write_text("select cast('x' as int) as order_id, 1 as customer_id, 'placed' as status")
    first = run_cli("build", "--vars", "{n: 1}", cwd=jaffle)
    assert first.returncode == 1
    statuses = {r["unique_id"]: r["status"] for r in
                json.loads((jaffle / "target/run_results.json").read_text())["results"]}
    to_retry = {uid for uid, status in statuses.items() if status in ("error", "fail", "skipped")}
    assert "model.jaffle_shop.orders" in to_retry and len(to_retry) < len(statuses)
    broken.write_text(good)
    again = run_cli("retry", cwd=jaffle)
    assert again.returncode == 0, again.stderr
    second = json.loads((jaffle / "target/run_results.json").read_text())
    assert second["command"] == "build" and second["args"]["vars"] == {"n": 1}
    assert {r["unique_id"] for r in second["results"]} == to_retry
    assert {r["status"] for r in second["results"]} <= {"success", "pass"}
    nothing = run_cli("retry", cwd=jaffle)
    assert nothing.returncode == 0 and "Nothing to retry" in nothing.stderr


def test_retry_after_a_state_selection_reruns_the_failed_nodes(jaffle):
    """Once the fix restores the model to its --state copy, state:modified+ matches nothing any more:
    retry runs what failed or was skipped (run_results.json), not that selection again."""
    import shutil

    assert run_cli("build", cwd=jaffle).returncode == 0
    shutil.copytree(jaffle / "target", jaffle / "prod", ignore=shutil.ignore_patterns("*.duckdb*"))
    model = jaffle / "models/staging/stg_orders.sql"
    good = model.read_text()
    model.write_text("select no_such_column from {{ ref('raw_orders') }}")
    assert run_cli("build", "--state", "prod", "-s", "state:modified+", cwd=jaffle).returncode == 1
    model.write_text(good)
    again = run_cli("retry", cwd=jaffle)
    assert again.returncode == 0, again.stderr
    results = json.loads((jaffle / "target/run_results.json").read_text())["results"]
    assert {"model.jaffle_shop.stg_orders", "model.jaffle_shop.orders"} <= {r["unique_id"] for r in results}
    assert {r["status"] for r in results} <= {"success", "pass"}


def test_retry_without_a_previous_run(jaffle):
    result = run_cli("retry", cwd=jaffle)
    assert result.returncode == 2 and "no previous run to retry" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_schema_key_is_an_error_with_file_and_line(jaffle):
    schema = jaffle / "models/staging/schema.yml"
    schema.write_text(schema.read_text() + "\nmodles:\n  - name: stg_orders\n")
    lines = schema.read_text().count("\n")
    result = run_cli("ls", cwd=jaffle)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"models/staging/schema.yml:{lines - 1}: unknown top-level key 'modles'" in result.stderr
    assert "did you mean 'models'" in result.stderr


def test_unsupported_dbt_features_warn(jaffle):
    schema = jaffle / "models/staging/schema.yml"
    original = schema.read_text()
    schema.write_text(original + "\nexposures:\n  - name: dashboard\n")
    (jaffle / "packages.yml").write_text("packages: []\n")
    (jaffle / "snapshots").mkdir()
    (jaffle / "snapshots/orders_snapshot.sql").write_text("{% snapshot x %}select 1{% endsnapshot %}\n")
    result = run_cli("ls", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    assert "'exposures:' is ignored" in result.stderr and "models/staging/schema.yml:" in result.stderr
    assert "packages.yml: packages are not supported" in result.stderr
    assert "snapshots/: snapshots are not supported" in result.stderr


CONTRACT = """version: 2
models:
  - name: stg_customers
    config:
      contract: {enforced: true}
    columns:
      - name: customer_id
        data_type: bigint
      - name: first_name
        data_type: text
      - name: last_name
        data_type: varchar
"""


def test_enforced_contract_passes_when_columns_and_types_match(jaffle):
    (jaffle / "models/staging/schema.yml").write_text(CONTRACT)
    result = run_cli("build", "-s", "+stg_customers", cwd=jaffle)
    assert result.returncode == 0, result.stderr


def test_contract_mismatch_fails_the_model_with_a_diff_and_keeps_the_table(jaffle):
    (jaffle / "project.yml").write_text((jaffle / "project.yml").read_text().replace(
        "+materialized: view", "+materialized: table"))
    assert run_cli("build", "-s", "+stg_customers", cwd=jaffle).returncode == 0
    (jaffle / "models/staging/schema.yml").write_text(CONTRACT.replace("data_type: bigint", "data_type: int")
                                                     + "      - name: email\n        data_type: varchar\n")
    model = jaffle / "models/staging/stg_customers.sql"
    model.write_text(model.read_text().replace("last_name", "last_name, 'x' as nickname"))
    result = run_cli("run", "-s", "stg_customers", cwd=jaffle)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    err = " ".join(result.stderr.split())
    assert "does not match its enforced contract" in err and "models/staging/schema.yml:3" in err
    assert "customer_id INTEGER BIGINT (type differs)" in err
    assert "email VARCHAR - (missing from the model)" in err
    assert "nickname - VARCHAR (not in the contract)" in err
    shown = run_cli("show", "-s", "stg_customers", "--output", "json", "--limit", "1", cwd=jaffle)
    assert "nickname" not in shown.stdout and "first_name" in shown.stdout  # the previous table is intact


def test_contract_needs_types_and_a_relation(jaffle):
    schema = jaffle / "models/staging/schema.yml"
    schema.write_text(CONTRACT.replace("        data_type: text\n", ""))
    untyped = run_cli("ls", cwd=jaffle)
    assert untyped.returncode == 2 and "missing: first_name" in untyped.stderr
    assert "models/staging/schema.yml:3" in untyped.stderr
    schema.write_text(CONTRACT.replace("data_type: text", "data_type: txet"))
    unknown = run_cli("build", "-s", "+stg_customers", cwd=jaffle)
    assert unknown.returncode == 1 and "unknown data_type 'txet'" in unknown.stderr
    schema.write_text(CONTRACT.replace("contract: {enforced: true}", "{contract: {enforced: true}, "
                                                                     "materialized: ephemeral}"))
    ephemeral = run_cli("ls", cwd=jaffle)
    assert ephemeral.returncode == 2 and "not 'ephemeral'" in ephemeral.stderr

def _ls_models(project: Path, *selector: str) -> list[str]:
    result = run_cli("ls", "--resource-type", "model", "--resource-type", "seed", "--state", "prod", "-s",
                     *selector, cwd=project)
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def test_state_modified_new_and_result_selectors(jaffle):
    import shutil

    assert run_cli("build", cwd=jaffle).returncode == 0
    manifest = json.loads((jaffle / "target/manifest.json").read_text())
    assert len(manifest["nodes"]["model.jaffle_shop.orders"]["checksum"]["checksum"]) == 64
    shutil.copytree(jaffle / "target", jaffle / "prod", ignore=shutil.ignore_patterns("*.duckdb*"))
    assert _ls_models(jaffle, "state:modified") == []
    unchanged = run_cli("build", "--state", "prod", "-s", "state:modified+", cwd=jaffle)  # no change: exit 0, said
    assert unchanged.returncode == 0 and "Nothing to do: --select state:modified+ matched no node" in unchanged.stderr
    assert json.loads((jaffle / "target/run_results.json").read_text())["results"] == []
    # an edit to SQL, a macro a model calls, a seed's bytes, a config in project.yml; and a new model
    (jaffle / "models/staging/stg_orders.sql").write_text(
        (jaffle / "models/staging/stg_orders.sql").read_text() + "\n-- reviewed\n")
    macro = jaffle / "macros/cents_to_dollars.sql"
    macro.write_text(macro.read_text().replace("/ 100", "/ 100.0"))
    with (jaffle / "seeds/raw_customers.csv").open("a") as seed:
        seed.write("101,New,Customer\n")
    (jaffle / "models/marts/new_mart.sql").write_text("select 1 as id\n")
    assert _ls_models(jaffle, "state:new") == ["model:new_mart"]
    assert _ls_models(jaffle, "state:modified") == ["model:new_mart", "model:stg_orders", "model:stg_payments",
                                                   "seed:raw_customers"]
    assert "model:orders" in _ls_models(jaffle, "state:modified+")
    ran = run_cli("run", "--state", "prod", "-s", "state:modified", "--exclude", "state:new", cwd=jaffle)
    assert ran.returncode == 0, ran.stderr
    built = {r["unique_id"] for r in json.loads((jaffle / "target/run_results.json").read_text())["results"]}
    assert built == {"model.jaffle_shop.stg_orders", "model.jaffle_shop.stg_payments"}


def test_result_selectors_read_the_earlier_run_results(jaffle):
    import shutil

    (jaffle / "models/marts/orders.sql").write_text("select cast('x' as int) as order_id, 1 as customer_id")
    assert run_cli("build", cwd=jaffle).returncode == 1
    shutil.copytree(jaffle / "target", jaffle / "prod", ignore=shutil.ignore_patterns("*.duckdb*"))
    assert _ls_models(jaffle, "result:error") == ["model:orders"]
    assert "model:customers" in _ls_models(jaffle, "result:success")
    skipped = run_cli("ls", "--state", "prod", "-s", "result:skipped", cwd=jaffle)  # orders' tests
    assert skipped.returncode == 0 and skipped.stdout.split()
    assert {line.split(":")[0] for line in skipped.stdout.split()} == {"test"}


def test_state_selection_errors(jaffle):
    missing = run_cli("ls", "-s", "state:modified", cwd=jaffle)
    assert missing.returncode == 2 and "--state" in missing.stderr and "Traceback" not in missing.stderr
    no_manifest = run_cli("ls", "--state", "nowhere", "-s", "state:modified", cwd=jaffle)
    assert no_manifest.returncode == 2 and "nowhere/manifest.json" in no_manifest.stderr
    assert run_cli("ls", cwd=jaffle).returncode == 0
    bad = run_cli("ls", "--state", "target", "-s", "state:changed", cwd=jaffle)
    assert bad.returncode == 2 and "state:modified" in bad.stderr


def test_excluding_a_model_excludes_its_tests(jaffle):
    every = run_cli("ls", "--resource-type", "test", cwd=jaffle).stdout.split()
    result = run_cli("ls", "--resource-type", "test", "--exclude", "orders", cwd=jaffle)
    assert result.returncode == 0, result.stderr
    kept = result.stdout.split()
    assert any("orders_order_id" in name and "stg_" not in name for name in every)
    assert not any("orders_order_id" in name and "stg_" not in name for name in kept)
    assert "test:unique_customers_customer_id" in kept
