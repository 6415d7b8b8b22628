"""dbt 1.8 unit tests (`unit_tests:` in schema YAML): run one model's SQL on fixture rows and compare
its output with the expected rows.

Each test runs in its own in-memory DuckDB: the `given` rows become tables there, the model is
rendered with its refs/sources pointing at them, and nothing of the project's database is read or
written except the column types of the real parents (to type the fixtures as dbt does). ai_query is
answered from a `given: - input: ai_query` fixture or `overrides: {macros: {ai_query: ...}}`; a call
with no fixture answer fails the test, so no endpoint is ever called.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SqlsynthError
from .identifiers import quote
from .node_types import RELATION_TYPES, Status
from .project import Node, Project
from .render import Relation
from .unit_test_yaml import AI_QUERY

SAMPLE_ROWS = 10
_AI_QUERY_HINT = ("add it under given: - input: ai_query rows: [{request: ..., response: ...}], "
                  "or set overrides: {macros: {ai_query: ...}}")


class UnitTestFailure(SqlsynthError):
    """The model could not run on the fixtures (an SQL error, a missing input, an unanswered ai_query)."""


# --------------------------------------------------------------------------------------------
# running


@dataclass
class UnitTestOutcome:
    status: Status  # PASS or FAIL
    failures: int = 0
    columns: list[str] = field(default_factory=list)
    sample: list[tuple] = field(default_factory=list)
    message: str = "passed"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        return "json(" + _literal(json.dumps(value)) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def _typed(value: Any, kind: str | None) -> str:
    """A fixture value as SQL; typed like the real column when its type is known (JSON into STRUCTs)."""
    if kind is None:
        return _literal(value)
    if isinstance(value, (dict, list)):
        return f"cast(cast({_literal(json.dumps(value))} as json) as {kind})"
    return f"cast({_literal(value)} as {kind})"


def _rows_sql(rows: list[dict[str, Any]], types: dict[str, str]) -> str:
    """select ... union all by name select ...; columns the rows leave out are NULL (as in dbt)."""
    columns = list(types) or list(dict.fromkeys(k for row in rows for k in row))
    if not rows:
        return "select " + ", ".join(f"cast(NULL as {types[c]}) as {quote(c)}" for c in columns) + " limit 0"
    selects = ["select " + ", ".join(f"{_typed(row.get(c), types.get(c))} as {quote(c)}" for c in columns)
               for row in rows]
    return "\nunion all by name\n".join(selects)


def _fixture_sql(rows: list[dict[str, Any]] | dict[str, str], types: dict[str, str]) -> str:
    """The select that builds one fixture: format sql as written, dict/csv rows as literals."""
    return rows["sql"] if isinstance(rows, dict) else _rows_sql(rows, types)


def _fixture_name(key: str) -> str:
    return "__given_" + re.sub(r"\W", "_", key)


@dataclass
class _Fixtures:
    """The given inputs of one unit test, and the ones the model asked for that were not given."""

    keys: set[str]
    missing: list[str] = field(default_factory=list)

    def relation(self, key: str) -> Relation:
        if key not in self.keys and key not in self.missing:
            self.missing.append(key)
        return Relation("main", _fixture_name(key))


def _real_types(project: Project, db: Any, key: str) -> dict[str, str]:
    """Column types of the real relation a fixture stands for (metadata only), {} when not built yet."""
    if key == "this":
        return {}
    if key.startswith("ref:"):
        node = project.find(key[4:], RELATION_TYPES)
    else:
        node = project.nodes.get(f"source.{project.name}.{key[7:]}")
    if node is None or db is None or not hasattr(db, "columns"):
        return {}
    return dict(db.columns(node.schema, node.alias))


def _render(project: Project, model: Node, spec: dict[str, Any], fixtures: _Fixtures) -> str:
    overrides = spec["overrides"]
    macros = dict(overrides["macros"])
    incremental = bool(macros.pop("is_incremental", False))
    macros.pop(AI_QUERY, None)  # answered by the fixture function, not at render time
    state = project.render_state(model, resolve_ref=lambda name, _pkg: fixtures.relation(f"ref:{name}"),
                                 incremental=incremental)
    state.resolve_source = lambda src, table: fixtures.relation(f"source:{src}.{table}")
    state.this = fixtures.relation("this") if incremental else model.relation
    state.vars = {**project.vars, **overrides["vars"]}
    state.config = dict(model.config)
    context = {name: (lambda *_a, _v=value, **_k: _v) for name, value in macros.items()}
    if overrides["env_vars"]:
        context["env_var"] = _env_var(overrides["env_vars"], project.renderer.namespace["env_var"])
    return project.renderer.render(model.original_file_path, model.raw_code, state, context=context)


def _env_var(values: dict[str, Any], fallback: Any) -> Any:
    def env_var(name: str, *default: Any, **options: Any) -> Any:  # options: secret=true
        return str(values[name]) if name in values else fallback(name, *default, **options)
    return env_var


class _AIQueryFixture:
    """sqlsynth_ai_query for unit tests: answers from the given rows (request -> response), else the
    override's constant; anything else fails the test (no endpoint is called)."""

    def __init__(self, given: list[dict[str, Any]], override: Any):
        self.answers = {self._key(row.get("request", row.get("prompt"))): row.get("response") for row in given}
        self.override = override

    @staticmethod
    def _key(request: Any) -> str:
        return request if isinstance(request, str) else json.dumps(request, sort_keys=True)

    def answer(self, request_json: str | None) -> str | None:
        request = json.loads(request_json) if request_json is not None else None
        key = self._key(request)
        if key in self.answers:
            value = self.answers[key]
        elif self.override is not None:
            value = self.override
        else:
            raise UnitTestFailure(f"ai_query was called with a request the unit test gives no answer for: "
                                  f"{key[:200]!r}", hint=_AI_QUERY_HINT)
        return value if isinstance(value, str) or value is None else json.dumps(value)

    def __call__(self, endpoint, request, response_format, parameters, fail_on_error, node):
        import pyarrow as pa

        out = []
        for text, fmt, fail in zip(request.to_pylist(), response_format.to_pylist(), fail_on_error.to_pylist(),
                                   strict=True):
            value = self.answer(text)
            if fail is False:  # failOnError := false: ai_query's {result, errorMessage, finishReason}
                result = value if fmt is not None and value is not None else json.dumps(value)
                value = f'{{"result":{result},"errorMessage":null,"finishReason":"stop"}}'
            out.append(value)
        return pa.array(out, type=pa.string())


def _connection(project: Project, db: Any, ai_fixture: _AIQueryFixture) -> tuple[Any, Any]:
    """An in-memory DuckDB with the project's functions, ai_query replaced by the fixture."""
    import duckdb

    from .llm.transform import UDF_NAME
    from .python_udfs import FunctionContext, register_all

    con = duckdb.connect(":memory:")
    context = FunctionContext(project.dir, project.config, project.target_dir, project.database_path,
                              project.pydantic_models)
    register_all(con, project.udfs, context)
    try:
        con.remove_function(UDF_NAME)
    except duckdb.Error:
        pass  # the ai_query plugin is not loaded
    varchar, boolean = duckdb.sqltype("VARCHAR"), duckdb.sqltype("BOOLEAN")
    con.create_function(UDF_NAME, ai_fixture, [varchar, varchar, varchar, varchar, boolean, varchar], varchar,
                        type="arrow", null_handling="special")
    return con, context


def _expected_columns(con: Any, expected: list[dict[str, Any]] | dict[str, str]) -> list[str]:
    if isinstance(expected, dict):  # format sql: the columns its select returns
        return [row[0] for row in con.execute(f"describe select * from ({expected['sql']})").fetchall()]
    return list(dict.fromkeys(k for row in expected for k in row))


def _compare(con: Any, expected: list[dict[str, Any]] | dict[str, str]) -> UnitTestOutcome:
    actual_types = {row[0]: row[1] for row in con.execute("describe __actual").fetchall()}
    columns = _expected_columns(con, expected) or list(actual_types)
    unknown = [c for c in columns if c not in actual_types]
    if unknown:
        raise UnitTestFailure(f"expected column(s) {', '.join(unknown)} are not in the model's output "
                              f"({', '.join(actual_types)})")
    if isinstance(expected, dict):  # typed like the model's output, as dict/csv rows are
        casts = ", ".join(f"cast({quote(c)} as {actual_types[c]}) as {quote(c)}" for c in columns)
        con.execute(f"create table __expected as select {casts} from ({expected['sql']})")
    else:
        con.execute(f"create table __expected as {_rows_sql(expected, {c: actual_types[c] for c in columns})}")
    names = ", ".join(quote(c) for c in columns)
    diff = con.execute(
        f"(select '+' as diff, {names} from __actual except all select '+', {names} from __expected) "
        f"union all (select '-', {names} from __expected except all select '-', {names} from __actual) "
        "order by all").fetchall()
    if not diff:
        return UnitTestOutcome(Status.PASS)
    produced = sum(1 for row in diff if row[0] == "+")
    return UnitTestOutcome(Status.FAIL, len(diff), ["diff", *columns], diff[:SAMPLE_ROWS],
                           f"actual differs from expected: {produced} unexpected row(s) (+), "
                           f"{len(diff) - produced} missing row(s) (-)")


def run_unit_test(project: Project, db: Any, node: Node) -> UnitTestOutcome:
    """Build the fixtures, run the model's SQL on them in memory, compare with `expect`."""
    from .compile import close_parser, compile_sql
    from .extensions import registry

    model, spec = project.nodes[node.attached_node], node.unit_test or {}
    given = {item["input"]: item["rows"] for item in spec["given"]}
    fixtures = _Fixtures(set(given) - {AI_QUERY})
    rendered = _render(project, model, spec, fixtures)
    if fixtures.missing:
        raise UnitTestFailure(f"model '{model.name}' reads {', '.join(fixtures.missing)} but the unit test gives no "
                              "rows for it", path=node.yaml_path, line=node.yaml_line,
                              hint="add it under given: (input: ref('name') with rows: [] for an empty input)")
    fixture = _AIQueryFixture(given.get(AI_QUERY, []), spec["overrides"]["macros"].get(AI_QUERY))
    con, context = _connection(project, db, fixture)
    try:
        for key in fixtures.keys:
            con.execute(f"create table {quote(_fixture_name(key))} as "
                        f"{_fixture_sql(given[key], _real_types(project, db, key))}")
        try:
            sql = compile_sql(rendered, source=model.raw_code, path=model.original_file_path,
                              dialect=model.config.get("dialect", "duckdb"), node_name=model.name,
                              functions=context, transforms=registry().sql_transforms)
        finally:
            close_parser()
        con.execute(f"create table __actual as\n{sql}")
        return _compare(con, spec["expect"])
    except SqlsynthError:
        raise
    except Exception as exc:  # DuckDB errors, and UnitTestFailure raised inside the ai_query fixture
        text = re.sub(r"^.*?Python exception occurred while executing the UDF: (\w+: )?", "", str(exc), flags=re.S)
        raise UnitTestFailure(f"unit test '{node.name}' of model '{model.name}': {text.splitlines()[0]}",
                              path=node.yaml_path, line=node.yaml_line,
                              hint=_AI_QUERY_HINT if "gives no answer for" in text else
                              "a given input needs every column the model reads (or build its parents "
                              "first: the fixtures then take their columns and types)") from None
    finally:
        context.close()
        con.close()
