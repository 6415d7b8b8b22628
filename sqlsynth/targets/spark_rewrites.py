"""DuckDB idioms that sqlglot does not carry over to Spark, rewritten on the syntax tree.

- ``len(string_split(...))``: sqlglot writes LENGTH (a string function on Spark) → ``size``;
- ``generate_subscripts(a, 1) as p, unnest(a) as x`` side by side (DuckDB zips them) →
  ``inline(transform(a, (v, i) -> named_struct('p', i + 1, 'x', v)))``;
- ``regexp_replace(s, p, r, 'i')`` → the pattern gets ``(?i)`` (sqlglot drops the flag);
- ``cast('0x' || hex as bigint)`` (DuckDB reads hex literals) → ``cast(conv(hex, 16, 10) as bigint)``;
- ``select * replace (e as c) from cte``: expanded to the CTE's columns when the query defines them;
- ``d + interval (n) day`` (dbt's dateadd on DuckDB; Spark's INTERVAL takes a literal only) →
  ``timestampadd(DAY, n, d)`` (a timestamp on both engines; month ends clamp alike).
"""

from __future__ import annotations

from sqlglot import exp


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def array_length(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Length) and isinstance(node.this, (exp.Split, exp.Array, exp.StringToArray)):
        return _call("size", node.this)
    return node


def case_insensitive_regex(node: exp.Expression) -> exp.Expression:
    modifiers = node.args.get("modifiers") if isinstance(node, exp.RegexpReplace) else None
    pattern = node.args.get("expression") if modifiers is not None else None
    if isinstance(modifiers, exp.Literal) and "i" in modifiers.this and isinstance(pattern, exp.Literal):
        node.set("expression", exp.Literal.string("(?i)" + pattern.this))
        node.set("modifiers", None)
    return node


def hex_cast(node: exp.Expression) -> exp.Expression:
    if not (isinstance(node, exp.Cast) and node.to.is_type("bigint", "int", "ubigint")):
        return node
    inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
    if isinstance(inner, (exp.DPipe, exp.Concat)):
        parts = [inner.this, inner.expression] if isinstance(inner, exp.DPipe) else list(inner.expressions)
        if isinstance(parts[0], exp.Literal) and parts[0].this.lower() == "0x" and len(parts) == 2:
            node.set("this", _call("conv", parts[1], exp.Literal.number(16), exp.Literal.number(10)))
    return node


def zipped_unnest(select: exp.Expression) -> exp.Expression:
    """DuckDB's generate_subscripts(a, 1) next to unnest(a) in one SELECT: positions and values."""
    if not isinstance(select, exp.Select):
        return select
    projections = list(select.expressions)
    for i, item in enumerate(projections[:-1]):
        following = projections[i + 1]
        subscripts, values = item.unalias(), following.unalias()
        if not (isinstance(subscripts, exp.Anonymous) and subscripts.name.lower() == "generate_subscripts"
                and isinstance(values, (exp.Explode, exp.Unnest))):
            continue
        array = values.this if isinstance(values, exp.Explode) else values.expressions[0]
        if subscripts.expressions[0] != array:
            continue
        lam = exp.Lambda(this=_call("named_struct", exp.Literal.string(item.alias_or_name),
                                    exp.Add(this=exp.column("__i"), expression=exp.Literal.number(1)),
                                    exp.Literal.string(following.alias_or_name), exp.column("__v")),
                         expressions=[exp.to_identifier("__v"), exp.to_identifier("__i")])
        inline = _call("inline", _call("transform", array.copy(), lam))
        select.set("expressions", projections[:i] + [inline] + projections[i + 2:])
        return select
    return select


def _cte_columns(select: exp.Select, name: str) -> list[str] | None:
    query = select
    while query is not None:
        with_ = query.args.get("with_")
        if with_ is not None:
            for cte in with_.expressions:
                if cte.alias == name:
                    body = cte.this
                    while isinstance(body, exp.SetOperation):
                        body = body.this
                    names = [p.alias_or_name for p in body.expressions] if isinstance(body, exp.Select) else []
                    ok = names and all(n and n != "*" for n in names)
                    return names if ok else None
        query = query.parent
    return None


def star_replace(select: exp.Expression) -> exp.Expression:
    """``* replace (...)`` has no Spark spelling: list the CTE's columns with the replacements."""
    if not isinstance(select, exp.Select):
        return select
    stars = [p for p in select.expressions if isinstance(p, exp.Star) and p.args.get("replace")]
    source = select.args.get("from_")
    if not stars or source is None or not isinstance(source.this, exp.Table) or select.args.get("joins"):
        return select
    columns = _cte_columns(select, source.this.name)
    if columns is None:
        return select
    star = stars[0]
    replaced = {r.alias_or_name: r for r in star.args["replace"]}
    expanded = [replaced[c].copy() if c in replaced else exp.column(c) for c in columns]
    index = select.expressions.index(star)
    select.set("expressions", select.expressions[:index] + expanded + select.expressions[index + 1:])
    return select


_INTERVAL_UNITS = {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND", "MILLISECOND",
                   "MICROSECOND"}


def _computed_interval(node: exp.Expression) -> tuple[exp.Expression, str] | None:
    """(amount, unit) of ``interval (expr) unit``; None for a literal interval Spark reads as is."""
    if not isinstance(node, exp.Interval) or node.args.get("unit") is None:
        return None
    amount, unit = node.this, node.args["unit"].name.upper().removesuffix("S")
    if isinstance(amount, exp.Literal) or unit not in _INTERVAL_UNITS:
        return None
    return (amount.this if isinstance(amount, exp.Paren) else amount), unit


def interval_arithmetic(node: exp.Expression) -> exp.Expression:
    if isinstance(node, (exp.Add, exp.Sub, exp.DateAdd, exp.DateSub)):
        found = _computed_interval(node.expression)
        if found is not None:
            amount, unit = found
            if isinstance(node, (exp.Sub, exp.DateSub)):
                amount = exp.Neg(this=exp.Paren(this=amount.copy()))
            return _call("timestampadd", exp.Var(this=unit), amount.copy(), node.this.copy())
    return node


REWRITES = (array_length, case_insensitive_regex, hex_cast, zipped_unnest, star_replace, interval_arithmetic)
