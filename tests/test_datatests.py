from helpers import build, statuses


def _project(make_project, yml: str, extra: dict | None = None):
    return make_project({
        "seeds/people.csv": "id,name,team\n1,ada,a\n2,alan,b\n2,grace,z\n4,,a\n",
        "seeds/teams.csv": "team\na\nb\n",
        "models/people_v.sql": "select * from {{ ref('people') }}",
        "models/schema.yml": yml,
        **(extra or {}),
    })


def test_generic_tests_fail_with_counts_and_samples(make_project):
    root = _project(make_project, """
        version: 2
        models:
          - name: people_v
            columns:
              - name: id
                data_tests: [unique, not_null]
              - name: name
                tests:
                  - not_null:
                      severity: warn
              - name: team
                data_tests:
                  - accepted_values: {values: [a, b]}
                  - relationships: {to: "ref('teams')", field: team}
    """)
    report = build(root)
    by_name = {r.name: r for r in report.results}
    assert by_name["unique_people_v_id"].status == "fail"
    assert by_name["unique_people_v_id"].failures == 1
    assert by_name["unique_people_v_id"].sample_rows == [(2, 2)]
    assert by_name["not_null_people_v_id"].status == "pass"
    assert by_name["not_null_people_v_name"].status == "warn"
    assert by_name["accepted_values_people_v_team__a__b"].status == "fail"
    rel = [r for r in report.results if r.name.startswith("relationships")][0]
    assert rel.status == "fail" and rel.failures == 1
    assert report.exit_code == 1


def test_custom_generic_and_singular_tests_and_skip_downstream(make_project):
    root = _project(make_project, """
        version: 2
        models:
          - name: people_v
            data_tests:
              - row_count_at_least: {n: 10}
    """, {
        "macros/tests.sql": """
            {% test row_count_at_least(model, n) %}
            select count(*) as c from {{ model }} having count(*) < {{ n }}
            {% endtest %}
        """,
        "tests/no_empty_names.sql": "select * from {{ ref('people_v') }} where name is null",
        "models/downstream.sql": "select * from {{ ref('people_v') }}",
    })
    report = build(root)
    s = statuses(report)
    assert s["row_count_at_least_people_v_10"] == "fail"
    assert s["no_empty_names"] == "fail"
    assert s["downstream"] == "skipped"  # build: a failing test skips what depends on the model


def test_where_and_error_if(make_project):
    root = _project(make_project, """
        version: 2
        models:
          - name: people_v
            columns:
              - name: id
                data_tests:
                  - unique:
                      config: {where: "team = 'a'"}
              - name: team
                data_tests:
                  - accepted_values:
                      values: [a, b]
                      config: {error_if: ">5", warn_if: ">0"}
    """)
    s = statuses(build(root))
    assert s["unique_people_v_id"] == "pass"
    assert s["accepted_values_people_v_team__a__b"] == "warn"


def test_unknown_test_name_is_a_config_error(make_project):
    import pytest

    from sqlsynth.errors import ConfigError
    root = _project(make_project, """
        version: 2
        models:
          - name: people_v
            columns:
              - name: id
                data_tests: [uniqe]
    """)
    with pytest.raises(ConfigError) as info:
        build(root)
    assert info.value.line == 6 and "did you mean 'unique'" in info.value.hint


def test_two_relationship_tests_in_one_file_use_their_own_targets(make_project):
    root = make_project({
        "seeds/parents_a.csv": "id\n1\n2\n",
        "seeds/parents_b.csv": "id\n1\n",
        "seeds/child.csv": "a_id,b_id\n1,1\n2,1\n",
        "models/schema.yml": "",
        "seeds/schema.yml": """
            version: 2
            seeds:
              - name: child
                columns:
                  - name: a_id
                    data_tests:
                      - relationships: {to: "ref('parents_a')", field: id}
                  - name: b_id
                    data_tests:
                      - relationships: {to: "ref('parents_b')", field: id}
        """,
    })
    report = build(root)
    assert report.success, [(r.name, r.message) for r in report.results]
    tests = [r for r in report.results if r.resource_type == "test"]
    assert len(tests) == 2
    from sqlsynth.api import Options, load
    project, _ = load(Options(project_dir=root))
    deps = sorted(tuple(sorted(n.depends_on)) for n in project.by_type("test"))
    assert deps == [("seed.proj.child", "seed.proj.parents_a"), ("seed.proj.child", "seed.proj.parents_b")]
