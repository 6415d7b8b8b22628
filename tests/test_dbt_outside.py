"""A dbt project laid out like dbt-labs/jaffle-shop (2024), run unchanged on DuckDB (fixture dbt_shop):
what a dbt user hit there first — `dbt-cloud:`, `__sources.yml`, Jinja in project.yml configs, seeds
in a `+schema`, adapter.dispatch, dbt.* cross-database macros, package macros copied into macros/,
and a unit test whose inputs have a test pointing downstream (the run used to end silently early)."""

import hashlib
import json

import pytest

from conftest import run_cli
from helpers import query

DB = "target/shop.duckdb"
LOAD = ("--vars", '{"load_source_data": true}')


@pytest.fixture
def shop(fixture_project):
    project = fixture_project("dbt_shop")
    seeded = run_cli("seed", *LOAD, cwd=project)
    assert seeded.returncode == 0, seeded.stderr
    return project


def test_the_project_builds_unchanged_with_every_node(shop):
    result = run_cli("build", cwd=shop)
    assert result.returncode == 0, result.stderr
    assert "OK=5 PASS=7 TOTAL=12" in result.stderr
    assert "'dbt-cloud' is ignored" in result.stderr and "Traceback" not in result.stderr
    ran = {r["unique_id"].rsplit(".", 1)[-1] for r in json.loads((shop / "target/run_results.json").read_text())["results"]}
    assert {"orders", "test_order_items_compute_to_bools", "relationships_order_items_order_id__order_id__ref_orders_",
            "dbt_utils_expression_is_true_stg_orders_order_total_tax_paid_subtotal"} <= ran


def test_seeds_go_to_their_schema_and_sources_read_them(shop):
    assert query(shop, "select count(*) from raw.raw_orders", DB) == [(4,)]
    assert run_cli("build", cwd=shop).returncode == 0
    assert query(shop, "select count(*) from main.orders", DB) == [(4,)]


def test_a_rendered_enabled_false_disables_the_seeds(fixture_project):
    project = fixture_project("dbt_shop")
    result = run_cli("seed", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "raw_orders" not in result.stderr  # "{{ var('load_source_data', false) }}" is false, not a string


def test_cross_database_macros_agree_with_dbt(shop):
    assert run_cli("build", cwd=shop).returncode == 0
    rows = query(shop, "select order_id, cast(ordered_at as varchar), cast(ship_by as varchar), cast(review_at as varchar), "
                       "months_since_launch, days_since_launch, order_key, subtotal_text, cast(month_end as varchar), "
                       "cast(order_total as varchar) from stg_orders order by 1", DB)
    assert rows == [
        ("o1", "2017-01-30 00:00:00", "2017-02-01 09:15:00", "2017-02-28 09:15:00", 0, 0, "c1/o1", "1100", "2017-01-31", "11.66"),
        ("o2", "2017-02-01 00:00:00", "2017-02-02 18:40:00", "2017-03-01 18:40:00", 1, 2, "c1/o2", "700", "2017-02-28", "7.42"),
        ("o3", "2017-03-31 00:00:00", "2017-04-03 23:59:59", "2017-04-30 23:59:59", 2, 60, "c2/o3", "1800", "2017-03-31", "19.08"),
        ("o4", "2017-12-31 00:00:00", "2018-01-01 12:00:00", "2018-01-31 12:00:00", 11, 335, "c3/o4", "500", "2017-12-31", "5.30"),
    ]
    spine = query(shop, "select min(date_day)::varchar, max(date_day)::varchar, count(*), sum(n) from date_spine", DB)
    assert spine == [("2017-01-01", "2017-01-10", 10, 55)]  # dbt_utils.date_spine excludes the end date
    key = query(shop, "select order_item_key from order_items where order_item_id = 'i1'", DB)[0][0]
    assert key == hashlib.md5(b"i1-JAF-001").hexdigest()  # dbt_utils.generate_surrogate_key, copied into macros/


@pytest.mark.parametrize("sql, needles", [
    ("select {{ adapter.dispatch('no_such')('x') }}", ["models/m.sql:1", "adapter.dispatch('no_such')",
                                                       "default__no_such"]),
    ("select {{ dbt.no_such_macro('x') }}", ["models/m.sql:1", "dbt.no_such_macro", "does not provide"]),
    ("select {{ dbt_utils.star(ref('a')) }}", ["models/m.sql:1", "package 'dbt_utils' is not installed",
                                              "copy the macro into macros/"]),
])
def test_missing_dispatch_and_package_macros_are_one_clear_error(make_project, sql, needles):
    project = make_project({"models/a.sql": "select 1 as x", "models/m.sql": sql})
    result = run_cli("compile", "-s", "m", cwd=project)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_bad_jinja_config_in_project_yml_names_the_file(make_project):
    project = make_project({"project.yml": "name: proj\nmodels:\n  +enabled: \"{{ var('nope') }}\"\n",
                            "models/a.sql": "select 1 as x"})
    result = run_cli("run", cwd=project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "project.yml" in result.stderr and "undefined var 'nope'" in result.stderr


def test_unqualified_cross_database_macros_work_too(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    sql = "select {{ datediff(\"date '2020-01-31'\", \"date '2020-03-01'\", 'month') }} as months, '{{ type_string() }}' as t"
    result = run_cli("show", "--inline", sql, "--output", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"months": 2, "t": "varchar"}]


def test_dateadd_with_a_computed_amount_transpiles_to_spark():
    import sqlglot

    from sqlsynth.targets.spark_rewrites import interval_arithmetic

    tree = sqlglot.parse_one("select d + interval (n) day, d - interval (n + 1) month, d + interval '1 day' "
                             "from t", read="duckdb")
    spark = tree.transform(interval_arithmetic).sql(dialect="spark")
    assert spark == ("SELECT TIMESTAMPADD(DAY, n, d), TIMESTAMPADD(MONTH, -(n + 1), d), d + INTERVAL '1' DAY "
                     "FROM t")


def test_range_as_a_table_is_refused_for_spark_with_the_portable_spelling(make_project):
    project = make_project({
        "project.yml": "name: proj\ntargets:\n  spark: {type: spark, remote: 'local[1]'}\n",
        "models/spine.sql": "select range as day\nfrom range(date '2020-01-01', date '2021-01-01', interval 1 day)"})
    result = run_cli("compile", "--target", "spark", "-s", "spine", cwd=project)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "models/spine.sql:2" in result.stderr and "range()" in result.stderr
    assert "unnest(generate_series(" in result.stderr


def test_a_schema_entry_without_a_model_is_a_warning_as_in_dbt(make_project):
    project = make_project({"models/a.sql": "select 1 as x",
                            "models/_docs.yml": "models:\n  - name: stale\n    tests: [empty_table]\n  - name: a\n"})
    result = run_cli("build", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "models/_docs.yml:2" in result.stderr and "'stale' is described here but no such file exists" in result.stderr


def test_a_ref_to_a_dbt_python_model_says_so(make_project):
    project = make_project({"models/py_model.py": "def model(dbt, session):\n    return dbt.ref('a')\n",
                            "models/a.sql": "select 1 as x", "models/b.sql": "select * from {{ ref('py_model') }}"})
    result = run_cli("run", cwd=project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "models/py_model.py: dbt Python models are not supported" in result.stderr
    assert "models/b.sql:1" in result.stderr and "ref 'py_model' is a dbt Python model" in result.stderr


def test_a_duckdb_file_scan_is_refused_for_spark(make_project):
    project = make_project({
        "project.yml": "name: proj\ntargets:\n  spark: {type: spark, remote: 'local[1]'}\n",
        "models/raw.sql": "select *\nfrom 'data/catalog/*.parquet'"})
    result = run_cli("compile", "--target", "spark", "-s", "raw", cwd=project)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "models/raw.sql:2" in result.stderr and "DuckDB reads a file path as a table" in result.stderr


def test_generic_tests_are_named_as_dbt_names_them(make_project):
    project = make_project({
        "models/orders.sql": "select 1 as order_id, 'placed' as status, 1 as customer_id",
        "models/schema.yml": """
            models:
              - name: orders
                columns:
                  - name: status
                    data_tests:
                      - accepted_values: {values: [placed, shipped, return_pending]}
                  - name: customer_id
                    data_tests:
                      - relationships: {to: ref('orders'), field: order_id}
            sources:
              - name: raw
                tables:
                  - name: customers
                    columns:
                      - name: id
                        data_tests: [not_null]
            """})
    result = run_cli("ls", "--resource-type", "test", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["test:accepted_values_orders_status__placed__shipped__return_pending",
                                     "test:relationships_orders_customer_id__order_id__ref_orders_",
                                     "test:source_not_null_raw_customers_id"]


def _schemas(project, *args) -> dict[str, str]:
    result = run_cli("ls", "--output", "json", *LOAD, *args, cwd=project)
    assert result.returncode == 0, result.stderr
    nodes = [json.loads(line) for line in result.stdout.splitlines()]
    return {n["name"]: n["config"]["schema"] for n in nodes if n["resource_type"] in ("model", "seed")}


def test_a_project_generate_schema_name_decides_schemas_with_the_target_name(fixture_project):
    project = fixture_project("dbt_shop")
    with (project / "project.yml").open("a") as handle:
        handle.write("targets:\n  dev: {type: duckdb}\n  prod: {type: duckdb, database: target/prod.duckdb}\n")
    dev = _schemas(project)
    assert dev["raw_orders"] == "raw" and dev["orders"] == "main" and dev["stg_orders"] == "main"
    prod = _schemas(project, "--target", "prod")
    assert prod["raw_orders"] == "raw" and prod["orders"] == "analytics_marts" and prod["stg_orders"] == "main"


def test_descriptions_render_docs_blocks(shop):
    assert run_cli("build", cwd=shop).returncode == 0
    nodes = json.loads((shop / "target/manifest.json").read_text())["nodes"]
    orders = next(n for n in nodes.values() if n["name"] == "orders" and n["resource_type"] == "model")
    assert orders["columns"]["customer_order_number"]["description"] == \
        "The order's position among its customer's orders: 1 for the first."


def test_an_unknown_docs_block_names_the_yaml_file(make_project):
    project = make_project({"models/a.sql": "select 1 as x",
                            "models/a.yml": "models:\n  - name: a\n    description: '{{ doc(\"nope\") }}'\n"})
    result = run_cli("run", cwd=project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "models/a.yml:2" in result.stderr and "doc('nope')" in result.stderr


def test_built_in_dbt_utils_tests_pass_and_fail_on_their_rows(make_project):
    project = make_project({
        "packages.yml": "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n",
        "models/t.sql": "select * from (values (1, 'a', 5, 'x'), (1, 'b', 50, ''), (2, 'a', 7, 'x')) v(id, k, n, s)",
        "models/u.sql": "select {{ dbt_utils.generate_surrogate_key(['id', 'null']) }} as key from {{ ref('t') }} limit 1",
        "models/t.yml": """
            models:
              - name: t
                data_tests:
                  - dbt_utils.unique_combination_of_columns: {combination_of_columns: [id, k]}
                  - dbt_utils.expression_is_true: {expression: "n > 0"}
                  - dbt_utils.equal_rowcount: {compare_model: ref('u')}
                columns:
                  - name: n
                    data_tests:
                      - dbt_utils.accepted_range: {min_value: 0, max_value: 10}
                      - dbt_utils.expression_is_true: {expression: "< 100"}
                      - dbt_utils.not_constant
                      - dbt_utils.at_least_one
                  - name: s
                    data_tests:
                      - dbt_utils.not_empty_string
                      - dbt_utils.not_null_proportion: {at_least: 0.9}
            """})
    assert run_cli("run", cwd=project).returncode == 0
    result = run_cli("test", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    status = {r["unique_id"].split(".")[2]: r["status"]
              for r in json.loads((project / "target/run_results.json").read_text())["results"]}
    assert status == {
        "dbt_utils_unique_combination_of_columns_t_id__k": "pass",
        "dbt_utils_expression_is_true_t_n_0": "pass",
        "dbt_utils_equal_rowcount_t_ref_u_": "fail",
        "dbt_utils_accepted_range_t_n__10__0": "fail",
        "dbt_utils_expression_is_true_t_n___100": "pass",
        "dbt_utils_not_constant_t_n": "pass",
        "dbt_utils_at_least_one_t_n": "pass",
        "dbt_utils_not_empty_string_t_s": "fail",
        "dbt_utils_not_null_proportion_t_0_9__s": "pass",
    }
    key = query(project, "select key from u", "target/proj.duckdb")[0][0]
    assert key == hashlib.md5(b"1-_dbt_utils_surrogate_key_null_").hexdigest()


def test_a_model_on_an_unloaded_source_says_the_source_is_missing(fixture_project):
    project = fixture_project("dbt_shop")
    result = run_cli("build", cwd=project)  # seeds disabled: load_source_data is not set
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ERROR stg_order_items: models/staging/stg_order_items.sql" in result.stderr
    assert "source 'ecom.raw_items' is not in the database" in result.stderr and "sqlsynth seed" in result.stderr
