"""dbt habits that work the same in sqlsynth (issue 16): selection syntax, show/compile/ls, retry, debug."""

import json

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
