"""The requests one ai_query call will send, as a query of their own (sqlglot, engine-neutral).

The call's own SELECT (same FROM, joins, WHERE, and the CTEs before it) projecting the call's arguments
instead of the model's columns. The Spark target stages ai_query with it (targets/spark_ai_plan.py);
DuckDB's provider batch mode computes a model's whole batch with it before the model runs
(llm/batch_prepass.py).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

CTE_HINT = ("move the SELECT that calls ai_query into a CTE (with answered as (select ..., "
            "ai_query(...) as answer from ...)) and select from it")


def request_query(tree: exp.Expression, select: exp.Select, projections: list[exp.Expression],
                  fail: Callable[[str, str], Exception]) -> exp.Expression:
    """The model's query with ``select`` (the call's SELECT) projecting ``projections`` (aliased), ending
    at that SELECT; ``fail(message, hint)`` is raised where the call sits in a subquery or set operation."""
    nodes = list(tree.walk())
    position = next(i for i, n in enumerate(nodes) if n is select)
    copy = tree.copy()
    inner = list(copy.walk())[position]
    inner.set("expressions", projections)
    inner.set("distinct", None)
    if inner is copy:
        return copy
    cte = inner.parent
    if not isinstance(cte, exp.CTE) or not isinstance(copy, exp.Query) or copy.args.get("with_") is None:
        raise fail("ai_query inside a subquery or a set operation", CTE_HINT)
    with_ = copy.args["with_"]
    kept = with_.expressions[:with_.expressions.index(cte) + 1]
    query = exp.select(*(p.alias_or_name for p in projections)).from_(cte.alias)
    query.set("with_", exp.With(expressions=kept, recursive=with_.args.get("recursive")))
    return query
