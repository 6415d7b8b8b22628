"""Data tests: generic tests from YAML (macros) and singular tests (SQL files); both return failing rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .node_types import NodeType, Status
from .project import Node, Project
from .render import RenderState

SAMPLE_ROWS = 5
_CONDITION = re.compile(r"^\s*(>=|<=|!=|==|=|>|<)\s*(\d+)\s*$")


@dataclass
class TestOutcome:
    status: Status  # PASS, WARN or FAIL
    failures: int
    columns: list[str]
    sample: list[tuple]


def _condition(text: str, node: Node) -> tuple[str, int]:
    match = _CONDITION.match(str(text))
    if not match:
        raise ConfigError(f"cannot read condition '{text}'", path=node.yaml_path or node.original_file_path,
                          line=node.yaml_line, hint="write e.g. error_if: '>10' or warn_if: '!=0'")
    return match.group(1), int(match.group(2))


def _holds(condition: tuple[str, int], value: int) -> bool:
    op, number = condition
    return {">": value > number, ">=": value >= number, "<": value < number, "<=": value <= number,
            "=": value == number, "==": value == number, "!=": value != number}[op]


def generic_test_sql(project: Project, node: Node, state: RenderState) -> str:
    """Call the test's macro with the tested relation (filtered by `where`) and its arguments."""
    attached = project.nodes[node.attached_node]
    model: Any = state.resolve_ref(attached.name, None) if attached.resource_type != NodeType.SOURCE \
        else project.source_relation(attached.source_name, attached.name)
    where = node.config.get("where")
    if where:
        model = f"(select * from {model} where {where}) as dbt_subquery"
    kwargs: dict[str, Any] = {"model": model}
    if node.column_name:
        kwargs["column_name"] = node.column_name
    for key, value in node.test_metadata["kwargs"].items():
        if isinstance(value, str) and re.match(r"^\s*(ref|source)\s*\(", value):
            value = project.renderer.render(node.original_file_path + "#args", "{{ " + value + " }}", state)
        kwargs[key] = value
    return project.renderer.call_macro(f"test_{node.test_metadata['name']}", state, **kwargs)


def run_test(cur: Any, node: Node, sql: str) -> TestOutcome:
    failures = cur.execute(f"select count(*) from (\n{sql}\n) as sqlsynth_test").fetchall()[0][0]
    columns: list[str] = []
    sample: list[tuple] = []
    if failures:
        result = cur.execute(f"select * from (\n{sql}\n) as sqlsynth_test limit {SAMPLE_ROWS}")
        columns = [d[0] for d in result.description]
        sample = result.fetchall()
    severity = str(node.config.get("severity", "error")).lower()
    error_if = _condition(node.config.get("error_if", "!=0"), node)
    warn_if = _condition(node.config.get("warn_if", "!=0"), node)
    if severity == "error" and _holds(error_if, failures):
        status = Status.FAIL
    elif _holds(warn_if, failures):
        status = Status.WARN
    else:
        status = Status.PASS
    return TestOutcome(status, failures, columns, sample)
