"""dbt 1.8 unit tests (`unit_tests:` in schema YAML): run one model's SQL on fixture rows and compare
its output with the expected rows.

Each test runs in its own in-memory DuckDB: the `given` rows become tables there, the model is
rendered with its refs/sources pointing at them, and nothing of the project's database is read or
written except the column types of the real parents (to type the fixtures as dbt does). ai_query is
answered from a `given: - input: ai_query` fixture or `overrides: {macros: {ai_query: ...}}`; a call
with no fixture answer fails the test, so no endpoint is ever called.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, SqlsynthError, did_you_mean
from .identifiers import quote
from .render import Relation

# `project` and `node` below are project.py's Project and Node, typed Any: project.py parses
# `unit_tests:` with this module, so importing them back would be an import circle.

UNIT_TEST_KEYS = {"name", "model", "description", "given", "expect", "overrides", "config", "versions"}
_GIVEN_KEYS = {"input", "rows", "format", "fixture"}
_OVERRIDE_KEYS = {"vars", "macros", "env_vars"}
_INPUT = re.compile(r"""^\s*(?:(ref)\(\s*['"]([^'"]+)['"]\s*\)|(source)\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)"""
                    r"""|(this)|(ai_query))\s*$""")
AI_QUERY = "ai_query"
SAMPLE_ROWS = 10


class UnitTestFailure(SqlsynthError):
    """The model could not run on the fixtures (an SQL error, a missing input, an unanswered ai_query)."""


# --------------------------------------------------------------------------------------------
# parsing: `unit_tests:` entries become nodes of type unit_test


def _fail(message: str, path: str, entry: Any, hint: str | None = None) -> ConfigError:
    return ConfigError(message, path=path, line=getattr(entry, "line", None), hint=hint)


def _input_key(text: Any, path: str, entry: Any) -> str:
    """ref('x') -> 'ref:x', source('s', 't') -> 'source:s.t', this -> 'this', ai_query -> 'ai_query'."""
    match = _INPUT.match(str(text or ""))
    if not match:
        raise _fail(f"unit test given input '{text}' is not ref('name'), source('src', 'table'), this or ai_query",
                    path, entry, hint="input: ref('stg_orders')")
    if match.group(1):
        return f"ref:{match.group(2)}"
    if match.group(3):
        return f"source:{match.group(4)}.{match.group(5)}"
    return match.group(6) or AI_QUERY


def _rows(item: Any, path: str, what: str) -> list[dict[str, Any]]:
    """Rows as dicts (format: dict, the default) or a CSV text with a header (format: csv)."""
    fmt = (item.get("format") or "dict") if isinstance(item, dict) else "dict"
    if isinstance(item, dict) and item.get("fixture"):
        raise _fail(f"{what}: fixture files are not supported", path, item, hint="put the rows inline")
    rows = item.get("rows") if isinstance(item, dict) else None
    if fmt == "csv":
        if not isinstance(rows, str):
            raise _fail(f"{what}: format csv needs rows as a text block (rows: |)", path, item)
        return [{k: _csv_value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(rows.strip()))]
    if fmt != "dict":
        raise _fail(f"{what}: format '{fmt}' is not supported", path, item, hint="use format: dict or csv")
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise _fail(f"{what}: rows must be a list of mappings ({{column: value}})", path, item)
    return [dict(r) for r in rows]


def _csv_value(text: str | None) -> Any:
    """CSV cells typed as YAML would type them (5 -> int, 2.5 -> float, true, empty -> NULL); the real
    column's type, when the parent was built, casts them again at run time."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return {"true": True, "false": False}.get(text.lower(), text)


def _check_keys(entry: Any, allowed: set[str], path: str, what: str) -> None:
    if not isinstance(entry, dict):
        raise _fail(f"{what} must be a mapping", path, entry)
    for key in entry:
        if key not in allowed:
            raise _fail(f"unknown key '{key}' in {what}", path, entry,
                        hint=did_you_mean(str(key), allowed) or f"allowed: {', '.join(sorted(allowed))}")


def unit_test_fields(project: Any, entry: Any, path: str) -> dict[str, Any]:
    """One `unit_tests:` entry as the fields of a Node attached to its model (checked here, at load)."""
    _check_keys(entry, UNIT_TEST_KEYS, path, "unit test")
    name, model_name = entry.get("name"), entry.get("model")
    if not name or not model_name:
        raise _fail("a unit test needs 'name' and 'model'", path, entry)
    model = project.find(str(model_name), ("model",))
    if model is None:
        raise _fail(f"unit test '{name}': no model named '{model_name}'", path, entry,
                    hint=did_you_mean(str(model_name), [n.name for n in project.by_type("model")]))
    given = []
    for item in entry.get("given") or []:
        _check_keys(item, _GIVEN_KEYS, path, f"unit test '{name}' given")
        given.append({"input": _input_key(item.get("input"), path, item),
                      "rows": _rows(item, path, f"unit test '{name}' given {item.get('input')}")})
    expect = entry.get("expect")
    _check_keys(expect, {"rows", "format", "fixture"}, path, f"unit test '{name}' expect")
    overrides = entry.get("overrides") or {}
    _check_keys(overrides, _OVERRIDE_KEYS, path, f"unit test '{name}' overrides")
    config = dict(entry.get("config") or {})
    return {"unique_id": f"unit_test.{project.name}.{model.name}.{name}", "resource_type": "unit_test",
            "name": str(name), "original_file_path": path, "fqn": [project.name, model.name, str(name)],
            "config": {"enabled": True, **config}, "description": entry.get("description") or "",
            "attached_node": model.unique_id, "yaml_path": path, "yaml_line": getattr(entry, "line", None),
            "unit_test": {"given": given, "expect": _rows(expect, path, f"unit test '{name}' expect"),
                          "overrides": {k: dict(overrides.get(k) or {}) for k in _OVERRIDE_KEYS}}}


# --------------------------------------------------------------------------------------------
# running


@dataclass
class UnitTestOutcome:
    status: str  # pass | fail
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


def _real_types(project: Any, db: Any, key: str) -> dict[str, str]:
    """Column types of the real relation a fixture stands for (metadata only), {} when not built yet."""
    if key == "this":
        return {}
    if key.startswith("ref:"):
        node = project.find(key[4:], ("model", "seed"))
    else:
        node = project.nodes.get(f"source.{project.name}.{key[7:]}")
    if node is None or db is None or not hasattr(db, "columns"):
        return {}
    return dict(db.columns(node.schema, node.alias))


def _render(project: Any, model: Any, spec: dict[str, Any], fixtures: _Fixtures) -> str:
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
    def env_var(name: str, *default: Any) -> Any:
        return str(values[name]) if name in values else fallback(name, *default)
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
            raise UnitTestFailure(f"ai_query was called with a request the unit test gives no answer for: {key[:200]!r}",
                                  hint="add it under given: - input: ai_query rows: [{request: ..., response: ...}], "
                                       "or set overrides: {macros: {ai_query: ...}}")
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


def _connection(project: Any, db: Any, ai_fixture: _AIQueryFixture) -> tuple[Any, Any]:
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


def _compare(con: Any, expected: list[dict[str, Any]]) -> UnitTestOutcome:
    actual_types = {row[0]: row[1] for row in con.execute("describe __actual").fetchall()}
    columns = list(dict.fromkeys(k for row in expected for k in row)) or list(actual_types)
    unknown = [c for c in columns if c not in actual_types]
    if unknown:
        raise UnitTestFailure(f"expected column(s) {', '.join(unknown)} are not in the model's output "
                              f"({', '.join(actual_types)})")
    con.execute(f"create table __expected as {_rows_sql(expected, {c: actual_types[c] for c in columns})}")
    names = ", ".join(quote(c) for c in columns)
    diff = con.execute(
        f"(select '+' as diff, {names} from __actual except all select '+', {names} from __expected) "
        f"union all (select '-', {names} from __expected except all select '-', {names} from __actual) "
        "order by all").fetchall()
    if not diff:
        return UnitTestOutcome("pass")
    produced = sum(1 for row in diff if row[0] == "+")
    return UnitTestOutcome("fail", len(diff), ["diff", *columns], diff[:SAMPLE_ROWS],
                           f"actual differs from expected: {produced} unexpected row(s) (+), "
                           f"{len(diff) - produced} missing row(s) (-)")


def run_unit_test(project: Any, db: Any, node: Any) -> UnitTestOutcome:
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
                        f"{_rows_sql(given[key], _real_types(project, db, key))}")
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
                              hint="a given input needs every column the model reads (or build its parents "
                                   "first: the fixtures then take their columns and types)") from None
    finally:
        context.close()
        con.close()
