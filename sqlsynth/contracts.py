"""dbt's model contracts: with `contract: {enforced: true}` the built relation must have exactly the
columns (names and data types) the schema YAML declares. The check runs on the relation built aside,
before it is swapped in, so a mismatch fails the model and leaves the previous table as it was."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, SqlsynthError
from .node_types import NodeType

# `node` and `project` below are project.py's Node and Project, typed Any: project.py calls
# validate_contracts at load, so importing them back (even for type checking) would be an import circle.

CONTRACT_MATERIALIZATIONS = ("table", "view", "incremental")


class ContractError(SqlsynthError):
    """The model's columns differ from its enforced contract."""


def enforced(node: Any) -> bool:
    contract = node.config.get("contract")
    return isinstance(contract, dict) and bool(contract.get("enforced"))


def validate_contracts(project: Any) -> None:
    """At load: an enforced contract needs a materialization that builds a relation and a data_type
    for every declared column (as in dbt)."""
    for node in project.by_type(NodeType.MODEL):
        if not enforced(node):
            continue
        where = {"path": node.yaml_path or node.original_file_path, "line": node.yaml_line}
        if node.materialized not in CONTRACT_MATERIALIZATIONS:
            raise ConfigError(f"model '{node.name}': an enforced contract needs materialized "
                              f"{', '.join(CONTRACT_MATERIALIZATIONS)}, not '{node.materialized}'", **where,
                              hint="change the materialization or remove 'contract: {enforced: true}'")
        untyped = [name for name, column in node.columns.items() if not column.data_type]
        if not node.columns or untyped:
            raise ConfigError(f"model '{node.name}': an enforced contract needs a data_type for every column"
                              + (f" (missing: {', '.join(untyped)})" if untyped else " and at least one column"),
                              **where, hint="add 'data_type: integer' (any DuckDB type) under each column")


def _canonical(cur: Any, node: Any, name: str, declared: str) -> str:
    """DuckDB's own spelling of a declared type (int -> INTEGER, text -> VARCHAR, numeric(16,2) -> DECIMAL(16,2))."""
    try:
        return cur.execute(f"select typeof(cast(null as {declared}))").fetchall()[0][0]
    except Exception:  # duckdb's parser/catalog errors: an unknown type name
        raise ConfigError(f"model '{node.name}': column '{name}' declares an unknown data_type '{declared}'",
                          path=node.yaml_path or node.original_file_path, line=node.yaml_line,
                          hint="use a DuckDB type such as integer, varchar, double, date, timestamp") from None


def contract_diff(expected_types: dict[str, str], built: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(column, contract type, model type, what differs) for each disagreement, in contract order."""
    actual = dict(built)
    rows = []
    for name, expected in expected_types.items():
        if name not in actual:
            rows.append((name, expected, "-", "missing from the model"))
        elif actual[name] != expected:
            rows.append((name, expected, actual[name], "type differs"))
    rows += [(name, "-", kind, "not in the contract") for name, kind in built if name not in expected_types]
    return rows


def enforce_contract(cur: Any, node: Any, relation_sql: str) -> None:
    """Compare the columns of `relation_sql` (the temporary table, or `(query)` for a view) with the
    contract; raise ContractError with a diff table on any difference."""
    if not enforced(node):
        return
    expected = {name: _canonical(cur, node, name, column.data_type or "") for name, column in node.columns.items()}
    built = [(row[0], row[1]) for row in cur.execute(f"describe select * from {relation_sql}").fetchall()]
    diff = contract_diff(expected, built)
    if not diff:
        return
    width = max(len("column"), *(len(row[0]) for row in diff))
    kinds = max(len("contract"), *(len(row[1]) for row in diff))
    lines = [f"  {'column':<{width}}  {'contract':<{kinds}}  model"]
    lines += [f"  {name:<{width}}  {expected:<{kinds}}  {got}  ({why})" for name, expected, got, why in diff]
    raise ContractError(f"model '{node.name}' does not match its enforced contract (not swapped in):\n"
                        + "\n".join(lines), path=node.yaml_path or node.original_file_path, line=node.yaml_line,
                        hint="change the model's SQL, or the columns' data_type in the schema YAML")
