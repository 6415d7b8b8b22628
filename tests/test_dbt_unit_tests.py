"""dbt 1.8 unit tests (`unit_tests:` in schema YAML), run by `sqlsynth test` and `build` on fixture rows
in memory: the real tables are never read or written, and ai_query is answered by fixtures (issue 16.4)."""

import json

import duckdb
import pytest

from conftest import run_cli

UNIT_TESTS = """
unit_tests:
  - name: orders_sum_payments_per_method
    model: orders
    overrides:
      vars: {payment_methods: ["credit_card", "coupon"]}
    given:
      - input: ref('stg_orders')
        rows:
          - {order_id: 1, customer_id: 7, status: placed, order_date: 2024-01-01}
          - {order_id: 2, customer_id: 8, status: shipped}
      - input: ref('stg_payments')
        format: csv
        rows: |
          payment_id,order_id,payment_method,amount
          10,1,credit_card,5
          11,1,coupon,2.5
          12,2,coupon,1
    expect:
      rows:
        - {order_id: 1, credit_card_amount: 5, coupon_amount: 2.5, amount: 7.5}
        - {order_id: 2, credit_card_amount: 0, coupon_amount: 1, amount: 1}
"""


@pytest.fixture
def jaffle(fixture_project):
    project = fixture_project("jaffle")
    schema = project / "models/marts/schema.yml"
    schema.write_text(schema.read_text() + UNIT_TESTS)
    return project


def _results(project) -> dict[str, dict]:
    data = json.loads((project / "target/run_results.json").read_text())
    return {r["unique_id"]: r for r in data["results"]}


UID = "unit_test.jaffle_shop.orders.orders_sum_payments_per_method"


def test_unit_test_passes_on_fixtures_without_any_table(jaffle):
    listed = run_cli("ls", "--resource-type", "unit_test", cwd=jaffle)
    assert listed.stdout.split() == ["unit_test:orders_sum_payments_per_method"]
    ran = run_cli("test", "-s", "orders_sum_payments_per_method", cwd=jaffle)  # nothing was seeded or built
    assert ran.returncode == 0, ran.stderr
    assert _results(jaffle)[UID]["status"] == "pass"
    con = duckdb.connect(str(jaffle / "target/jaffle_shop.duckdb"), read_only=True)
    tables = con.execute("select table_name from information_schema.tables").fetchall()
    con.close()
    assert tables == []  # the fixtures lived in memory only


def test_failing_unit_test_shows_the_diff_and_build_skips_the_model(jaffle):
    schema = jaffle / "models/marts/schema.yml"
    schema.write_text(schema.read_text().replace("amount: 7.5}", "amount: 8}"))
    build = run_cli("build", "-s", "+orders", cwd=jaffle)
    assert build.returncode == 1 and "Traceback" not in build.stderr
    results = _results(jaffle)
    assert results[UID]["status"] == "fail" and results[UID]["failures"] == 2
    assert results["model.jaffle_shop.orders"]["status"] == "skipped"
    assert results["model.jaffle_shop.stg_orders"]["status"] == "success"  # inputs ran before the unit test
    sample = results[UID]["failing_rows_sample"]
    assert sample["columns"][0] == "diff" and {row[0] for row in sample["rows"]} == {"+", "-"}
    assert "1 unexpected row(s) (+), 1 missing row(s) (-)" in build.stderr


def test_unit_test_needs_every_input(jaffle):
    schema = jaffle / "models/marts/schema.yml"
    text = schema.read_text()
    start = text.index("      - input: ref('stg_payments')")
    schema.write_text(text[:start] + text[text.index("    expect:"):])
    result = run_cli("test", "-s", "orders", cwd=jaffle)
    assert result.returncode == 1
    assert "reads ref:stg_payments but the unit test gives no rows for it" in result.stderr


def test_unit_test_yaml_errors_name_file_and_line(jaffle):
    schema = jaffle / "models/marts/schema.yml"
    schema.write_text(schema.read_text().replace("model: orders\n", "model: ordres\n"))
    result = run_cli("ls", cwd=jaffle)
    assert result.returncode == 2 and "no model named 'ordres'" in result.stderr
    assert "models/marts/schema.yml:" in result.stderr and "did you mean 'orders'" in result.stderr
    schema.write_text(schema.read_text().replace("model: ordres\n", "model: orders\n")
                      .replace("input: ref('stg_orders')", "input: stg_orders"))
    bad_input = run_cli("ls", cwd=jaffle)
    assert bad_input.returncode == 2 and "is not ref('name')" in bad_input.stderr


def test_given_input_that_names_no_node_is_an_error_with_its_line(jaffle):
    """dbt: "had an input which was not found"; a source may be declared in a schema file read later."""
    (jaffle / "models/zz_sources.yml").write_text(
        "sources:\n  - name: raw\n    tables:\n      - name: payments\n")
    schema = jaffle / "models/marts/schema.yml"
    text = schema.read_text()
    extra = "      - input: source('raw', 'payments')\n        rows: []\n"
    schema.write_text(text.replace("    expect:\n      rows:\n        - {order_id: 1", extra + "    expect:\n"
                                   "      rows:\n        - {order_id: 1"))
    assert run_cli("ls", "--resource-type", "unit_test", cwd=jaffle).returncode == 0  # declared: accepted
    schema.write_text(schema.read_text().replace("source('raw', 'payments')", "source('raw', 'paymnts')"))
    bad_source = run_cli("ls", cwd=jaffle)
    assert bad_source.returncode == 2 and "no source table 'raw.paymnts'" in bad_source.stderr
    assert "did you mean 'raw.payments'" in bad_source.stderr
    schema.write_text(text.replace("input: ref('stg_orders')", "input: ref('stg_ordrs')"))
    bad_ref = run_cli("ls", cwd=jaffle)
    line = text[:text.index("input: ref('stg_orders')")].count("\n") + 1
    assert bad_ref.returncode == 2 and "Traceback" not in bad_ref.stderr
    assert f"models/marts/schema.yml:{line}: unit test 'orders_sum_payments_per_method' given ref('stg_ordrs'): " \
           "no model or seed named 'stg_ordrs'" in bad_ref.stderr
    assert "did you mean 'stg_orders'" in bad_ref.stderr


AI_MODEL = """
select question, ai_query('teacher', 'Answer briefly: ' || question) as answer,
       ai_query('teacher', 'Classify: ' || question, responseFormat := 'STRUCT<label: STRING>').label as label
from {{ ref('questions') }}
"""

AI_SCHEMA = """
version: 2
unit_tests:
  - name: answers_come_from_fixtures
    model: answers
    given:
      - input: ref('questions')
        rows: [{question: "Where is my card?"}]
      - input: ai_query
        rows:
          - {request: "Answer briefly: Where is my card?", response: "In the post."}
          - {request: "Classify: Where is my card?", response: {label: card_arrival}}
    expect:
      rows: [{question: "Where is my card?", answer: "In the post.", label: card_arrival}]
  - name: answers_from_an_override
    model: answers
    overrides:
      macros: {ai_query: {label: any}}
    given:
      - input: ref('questions')
        rows: [{question: "Hi"}]
    expect:
      rows: [{question: "Hi", label: any}]
"""


def test_ai_query_model_is_answered_by_fixtures_never_an_endpoint(make_project):
    project = make_project({
        "project.yml": "name: bank\nendpoints:\n  teacher:\n    provider: openai\n"
                       "    base_url: http://127.0.0.1:9/v1\n    model: none\n    max_retries: 0\n",
        "seeds/questions.csv": "question\nWhere is my card?\n",
        "models/answers.sql": AI_MODEL,
        "models/schema.yml": AI_SCHEMA,
    })
    result = run_cli("test", "-s", "answers", cwd=project, env={"OPENAI_API_KEY": "unused"})
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in _results(project).values()} == {"pass"}
    schema = project / "models/schema.yml"
    schema.write_text(schema.read_text().replace('request: "Classify: Where is my card?"', 'request: "other"'))
    missing = run_cli("test", "-s", "answers_come_from_fixtures", cwd=project, env={"OPENAI_API_KEY": "unused"})
    assert missing.returncode == 1 and "gives no answer for: 'Classify: Where is my card?'" in missing.stderr


INCREMENTAL = """
{{ config(materialized='incremental', unique_key='id') }}
select id, v, '{{ env_var("SQLSYNTH_TEST_REGION", "eu") }}' as region, {{ scale('v') }} as scaled
from {{ ref('src') }}
{% if is_incremental() %}
where id > (select max(id) from {{ this }})
{% endif %}
"""

INCREMENTAL_TESTS = """
version: 2
unit_tests:
  - name: incremental_run_takes_new_rows_only
    model: inc
    overrides:
      macros: {is_incremental: true, scale: "v * 100"}
      env_vars: {SQLSYNTH_TEST_REGION: us}
    given:
      - input: ref('src')
        rows: [{id: 1, v: 1}, {id: 2, v: 2}, {id: 3, v: 3}]
      - input: this
        rows: [{id: 1, v: 1}, {id: 2, v: 2}]
    expect:
      rows: [{id: 3, region: us, scaled: 300}]
  - name: full_build_takes_every_row
    model: inc
    given:
      - input: ref('src')
        rows: [{id: 1, v: 1}, {id: 2, v: 2}]
    expect:
      rows: [{id: 1, region: eu, scaled: 10}, {id: 2, region: eu, scaled: 20}]
"""


def test_overrides_for_is_incremental_this_macros_and_env_vars(make_project):
    project = make_project({
        "project.yml": "name: inc_project\n",
        "seeds/src.csv": "id,v\n1,1\n",
        "macros/scale.sql": "{% macro scale(column) %}{{ column }} * 10{% endmacro %}\n",
        "models/inc.sql": INCREMENTAL,
        "models/schema.yml": INCREMENTAL_TESTS,
    })
    result = run_cli("test", "-s", "inc", cwd=project)  # SQLSYNTH_TEST_REGION is unset: "eu" by default
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in _results(project).values()} == {"pass"}


SQL_AND_FIXTURE = """
version: 2
unit_tests:
  - name: orders_from_sql_and_a_fixture_file
    model: orders
    overrides:
      vars: {payment_methods: ["coupon"]}
    given:
      - input: ref('stg_orders')
        format: sql
        rows: |
          select 1 as order_id, 7 as customer_id, date '2024-01-01' as order_date, 'placed' as status
      - input: ref('stg_payments')
        format: csv
        fixture: payments_one_coupon
    expect:
      format: sql
      rows: select 1 as order_id, 3 as coupon_amount, 3 as amount
"""


def test_format_sql_and_csv_fixture_files(fixture_project):
    project = fixture_project("jaffle")
    schema = project / "models/marts/schema.yml"
    schema.write_text(schema.read_text() + SQL_AND_FIXTURE.split("version: 2", 1)[1])
    (project / "tests/fixtures").mkdir(parents=True)
    (project / "tests/fixtures/payments_one_coupon.csv").write_text(
        "payment_id,order_id,payment_method,amount\n1,1,coupon,3\n")
    result = run_cli("test", "-s", "orders_from_sql_and_a_fixture_file", cwd=project)
    assert result.returncode == 0, result.stderr
    (project / "tests/fixtures/payments_one_coupon.csv").unlink()
    missing = run_cli("ls", cwd=project)
    assert missing.returncode == 2 and "payments_one_coupon.csv not found" in missing.stderr
    assert "tests/fixtures/payments_one_coupon.csv" in missing.stderr
