"""DuckDB list functions → Spark's higher-order functions, on the syntax tree of a DuckDB-dialect model.

sqlglot carries many of them over by name only (LIST_BOOL_AND, LIST_COSINE_SIMILARITY, ``a && b``,
``a[i:j]``) or with DuckDB's meaning lost (a lambda's index is 1-based in DuckDB, 0-based in Spark; ``len``
of a list becomes LENGTH, a string function on Spark; ``a[-1]`` becomes ``a[-2]``). Rewritten here:

- ``a[i]``, ``list_extract`` → ``try_element_at(a, i)`` (1-based, negative from the end, NULL out of range);
- ``a[i:j]``, ``list_slice``/``array_slice`` → ``slice(a, i, j - i + 1)`` (DuckDB's bounds are inclusive);
- ``len``/``length`` of a list → ``size`` (a list: a list-valued expression, or a column some SELECT of
  the query defines as one; a column of another table is unknown here: spell it ``array_length(x)``);
- ``list_transform``/``list_filter`` with an index ``lambda x, i:`` → the index shifted to 1-based;
- ``list_reduce`` → ``aggregate``; ``list_bool_and``/``_or``, ``list_sum``, ``list_count``,
  ``list_aggregate(a, 'name')`` → ``aggregate`` over the non-NULL elements (DuckDB's aggregate semantics);
- ``list_cosine_similarity``/``_distance``, ``list_dot_product``/``list_inner_product``, ``list_distance``
  → ``zip_with`` + ``aggregate`` (in double precision; DuckDB computes FLOAT lists in single precision);
- ``list_has_any`` → ``arrays_overlap``, ``list_has_all``, ``list_intersect``, ``list_distinct`` (NULLs
  dropped), ``list_position`` (NULL when absent), ``list_reverse``, ``list_unique``.
Any other ``list_*`` function has no Spark spelling here and is refused (``NotPortable``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp


class NotPortable(Exception):
    """A DuckDB spelling with no Spark rewrite: the compiler names the model, line and the fix."""

    def __init__(self, name: str, why: str, fix: str):
        super().__init__(name)
        self.name, self.why, self.fix = name, why, fix


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _lam(body: exp.Expression, *names: str) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(n) for n in names])


def _var(name: str) -> exp.Identifier:
    return exp.to_identifier(name)


def _copy(node: exp.Expression) -> exp.Expression:
    return node.copy()


def _int(node: exp.Expression) -> int | None:
    """The value of an integer literal (``-2`` parses as Neg(2)), else None."""
    if isinstance(node, exp.Literal) and not node.is_string and node.this.lstrip("-").isdigit():
        return int(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _int(node.this)
        return None if value is None else -value
    return None


def _plus(node: exp.Expression, n: int) -> exp.Expression:
    """node + n, folded for literals and for sqlglot's own ``x + -1``."""
    value = _int(node)
    if value is not None:
        total = value + n
        return exp.Literal.number(total) if total >= 0 else exp.Neg(this=exp.Literal.number(-total))
    if isinstance(node, exp.Add) and _int(node.expression) == -n:
        return node.this
    if n == 0:
        return node
    if n < 0:
        return exp.Sub(this=node, expression=exp.Literal.number(-n))
    return exp.Add(this=node, expression=exp.Literal.number(n))


def _not_null(array: exp.Expression) -> exp.Expression:
    return _call("filter", array, _lam(exp.Not(this=exp.Is(this=_var("__x"), expression=exp.Null())), "__x"))


def _fold(array: exp.Expression, merge: exp.Expression) -> exp.Expression:
    """Reduce a list from its first element (NULL when empty); ``merge`` uses __a and __x."""
    rest = _call("slice", _copy(array), exp.Literal.number(2),
                 _call("greatest", _call("size", _copy(array)), exp.Literal.number(1)))
    return _call("aggregate", rest, _call("try_element_at", _copy(array), exp.Literal.number(1)),
                 _lam(merge, "__a", "__x"))


def _sum_of(pairs: exp.Expression) -> exp.Expression:
    """The sum of a list of numbers, in double precision."""
    zero = exp.Literal(this="0D", is_string=False)
    return _call("aggregate", pairs, zero,
                 _lam(exp.Add(this=_var("__s"), expression=_var("__v")), "__s", "__v"))


def _products(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return _call("zip_with", _copy(a), _copy(b), _lam(exp.Mul(this=_var("__x"), expression=_var("__y")), "__x", "__y"))


def _norm(a: exp.Expression) -> exp.Expression:
    return _call("sqrt", _sum_of(_call("transform", _copy(a),
                                       _lam(exp.Mul(this=_var("__x"), expression=_var("__x")), "__x"))))


def _cosine(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    # try_divide: a zero vector gives NULL (DuckDB: NaN) instead of failing the query under ANSI mode
    return _call("try_divide", _sum_of(_products(a, b)), exp.Mul(this=_norm(a), expression=_norm(b)))


def _distance(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    difference = exp.Paren(this=exp.Sub(this=_var("__x"), expression=_var("__y")))
    squares = _call("zip_with", _copy(a), _copy(b),
                    _lam(exp.Mul(this=difference, expression=difference.copy()), "__x", "__y"))
    return _call("sqrt", _sum_of(squares))


def _bool_fold(array: exp.Expression, conjunction: bool) -> exp.Expression:
    start = exp.Coalesce(this=_var("__a"), expressions=[exp.Boolean(this=conjunction)])
    op = exp.And if conjunction else exp.Or
    empty = exp.Cast(this=exp.Null(), to=exp.DataType.build("boolean"))
    return _call("aggregate", _not_null(array), empty, _lam(op(this=start, expression=_var("__x")), "__a", "__x"))


AGGREGATES: dict[str, Callable[[exp.Expression], exp.Expression]] = {
    "bool_and": lambda a: _bool_fold(a, True),
    "bool_or": lambda a: _bool_fold(a, False),
    "sum": lambda a: _fold(_not_null(a), exp.Add(this=_var("__a"), expression=_var("__x"))),
    "count": lambda a: _call("size", _not_null(a)),
    "max": lambda a: _call("array_max", a),
    "min": lambda a: _call("array_min", a),
}


def _list_aggregate(args: list[exp.Expression]) -> exp.Expression:
    kind = args[1] if len(args) == 2 else None
    if not (isinstance(kind, exp.Literal) and kind.is_string and kind.this.lower() in AGGREGATES):
        raise NotPortable("list_aggregate", "only these aggregates have a Spark rewrite: " + ", ".join(AGGREGATES),
                          "aggregate(list, start, (acc, x) -> ...)")
    return AGGREGATES[kind.this.lower()](args[0])


def _reduce(args: list[exp.Expression]) -> exp.Expression:
    lam = args[1]
    if not (isinstance(lam, exp.Lambda) and len(lam.expressions) == 2):
        raise NotPortable("list_reduce", "only a two-argument lambda (acc, x) has a Spark rewrite",
                          "aggregate(list, start, (acc, x) -> ...)")
    if len(args) == 3:  # an initial value: Spark's aggregate as is
        return _call("aggregate", args[0], args[2], lam)
    return _call("aggregate", _call("slice", args[0].copy(), exp.Literal.number(2),
                                    _call("greatest", _call("size", args[0].copy()), exp.Literal.number(1))),
                 _call("try_element_at", args[0].copy(), exp.Literal.number(1)), lam)


def _slice(array: exp.Expression, begin: exp.Expression | None, end: exp.Expression | None) -> exp.Expression:
    """DuckDB's 1-based inclusive [begin:end] (negative counts from the end) as slice(a, start, length)."""
    def position(bound: exp.Expression | None, default: exp.Expression) -> exp.Expression:
        if bound is None:
            return default
        value = _int(bound)
        if value is not None and value < 0:
            return _plus(_call("size", array.copy()), value + 1)
        return exp.Literal.number(1) if value == 0 else bound.copy()

    start = position(begin, exp.Literal.number(1))
    stop = position(end, _call("size", array.copy()))
    first, last = _int(start), _int(stop)
    if first is not None and last is not None:
        length: exp.Expression = exp.Literal.number(max(last - first + 1, 0))
    elif isinstance(stop, exp.Add) and stop.this == start and _int(stop.expression) is not None:
        length = exp.Literal.number(max(_int(stop.expression) + 1, 0))  # a[i:i + n]
    else:
        span = _plus(stop, 1 - first) if first is not None else _plus(
            exp.Sub(this=stop, expression=exp.Paren(this=start.copy())), 1)
        length = _call("greatest", span, exp.Literal.number(0))
    return _call("slice", array.copy(), start, length)


def _one_based_index(lam: exp.Expression) -> exp.Expression:
    """A (x, i) lambda's index is 1-based in DuckDB and 0-based in Spark: read i as (i + 1) in the body."""
    if not (isinstance(lam, exp.Lambda) and len(lam.expressions) == 2):
        return lam
    index = lam.expressions[1].name
    if _is_ref(lam.this, index):
        lam.set("this", _shifted(index))
    else:
        _shift(lam.this, index)
    return lam


def _is_ref(node: exp.Expression, index: str) -> bool:
    if isinstance(node, exp.Column):
        return not node.table and node.name == index
    return isinstance(node, exp.Identifier) and node.name == index and not isinstance(node.parent, exp.Column)


def _shifted(index: str) -> exp.Expression:
    return exp.Paren(this=exp.Add(this=_var(index), expression=exp.Literal.number(1)))


def _shift(node: exp.Expression, index: str) -> None:
    for child in list(node.iter_expressions()):
        if isinstance(child, exp.Lambda) and index in {e.name for e in child.expressions}:
            continue  # a nested lambda that binds the same name
        if _is_ref(child, index):
            child.replace(_shifted(index))
        else:
            _shift(child, index)


LIST_TYPES = (exp.Array, exp.Split, exp.StringToArray, exp.RegexpSplit, exp.ArrayFilter, exp.Transform,
              exp.ArrayDistinct, exp.ArrayIntersect, exp.ArraySort, exp.ArrayConcat, exp.Flatten, exp.ArrayAgg,
              exp.GenerateSeries, exp.ArraySlice, exp.ArrayCompact, exp.ArrayReverse, exp.ArrayRemove)
LIST_FUNCTIONS = {"slice", "filter", "transform", "array_distinct", "array_intersect", "array_except",
                  "sequence", "arrays_zip", "list_slice", "array_slice", "list_intersect", "list_reverse", "list_transform",
                  "list_apply", "array_transform", "array_apply", "list_filter", "list_cat", "list_sort",
                  "list_reverse_sort", "list_value", "list_pack", "str_split_regex", "string_split_regex",
                  "list_zip", "list_resize"}


def _is_list(node: exp.Expression, columns: set[str]) -> bool:
    if isinstance(node, exp.Paren):
        return _is_list(node.this, columns)
    if isinstance(node, LIST_TYPES):
        return True
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in LIST_FUNCTIONS
    if isinstance(node, exp.Bracket):
        return len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Slice)
    if isinstance(node, (exp.Coalesce, exp.If, exp.Case)):
        return any(_is_list(e, columns) for e in node.iter_expressions() if not isinstance(e, exp.If)) or any(
            _is_list(e.args.get("true"), columns) for e in node.args.get("ifs") or [] if e.args.get("true"))
    return isinstance(node, exp.Column) and node.name in columns


LIST_ARGUMENT_OF = (exp.Transform, exp.ArrayFilter, exp.ArrayDistinct, exp.ArraySize, exp.ArrayContains,
                    exp.ArrayOverlaps, exp.ArrayToString, exp.Explode, exp.Unnest, exp.Flatten)


def _used_as_list(tree: exp.Expression) -> set[str]:
    """Columns the query itself treats as lists: a list function's first argument, ``x[1]``, ``unnest(x)``."""
    names = set()
    for node in tree.walk():
        first = None
        if isinstance(node, LIST_ARGUMENT_OF):
            first = node.this if not isinstance(node, exp.Unnest) else (node.expressions or [None])[0]
        elif isinstance(node, exp.Anonymous) and node.name.lower().startswith(("list_", "array_")):
            first = (node.expressions or [None])[0]
        elif isinstance(node, exp.Bracket) and len(node.expressions) == 1:
            index = node.expressions[0]
            first = None if isinstance(index, exp.Literal) and index.is_string else node.this
        if isinstance(first, exp.Column):
            names.add(first.name)
    return names


def list_columns(tree: exp.Expression) -> set[str]:
    """Column names that hold lists: defined as one by some SELECT of the query (by name: CTE chains pass
    them along), or used as one by the query."""
    names: set[str] = _used_as_list(tree)
    while True:
        found = {a.alias for a in tree.find_all(exp.Alias)
                 if a.alias and a.alias not in names and _is_list(a.this, names)}
        if not found:
            return names
        names |= found


def _index(bracket: exp.Bracket) -> exp.Expression:
    return bracket.expressions[0]


def _element(array: exp.Expression, one_based: exp.Expression) -> exp.Expression:
    return _call("try_element_at", array, one_based)


def _bracket(node: exp.Bracket) -> exp.Expression:
    if len(node.expressions) != 1:
        return node
    index = _index(node)
    if isinstance(index, exp.Slice):
        return _slice(node.this, index.this, index.expression)
    if isinstance(index, exp.Literal) and index.is_string:  # struct['field'], map['key']
        return node
    return _element(node.this.copy(), _plus(index.copy(), 1))  # sqlglot stored DuckDB's index 0-based


def _anonymous(node: exp.Anonymous) -> exp.Expression:
    name, args = node.name.lower(), [a.copy() for a in node.expressions]
    simple = {"list_intersect": "array_intersect", "list_reverse": "reverse", "list_cat": "concat",
              "list_concat": "concat"}
    if name in simple:
        return _call(simple[name], *args)
    if name in ("list_extract", "array_extract", "list_element") and len(args) == 2:
        return node if isinstance(args[1], exp.Literal) and args[1].is_string else _element(*args)
    if name in ("list_slice", "array_slice") and len(args) == 3:
        return _slice(*args)
    if name in ("list_transform", "list_apply", "array_transform", "array_apply") and len(args) == 2:
        return _call("transform", args[0], _one_based_index(args[1]))
    if name in ("list_reduce", "array_reduce") and len(args) in (2, 3):
        return _reduce(args)
    if name in ("list_aggregate", "array_aggregate", "list_aggr", "aggregate") and len(args) == 2:
        return _list_aggregate(args)
    if name.startswith("list_") and name[5:] in AGGREGATES and len(args) == 1:
        return AGGREGATES[name[5:]](args[0])
    if name in ("list_cosine_similarity", "array_cosine_similarity"):
        return _cosine(*args)
    if name in ("list_cosine_distance", "array_cosine_distance"):
        return exp.Sub(this=exp.Literal.number(1), expression=_cosine(*args))
    if name in ("list_dot_product", "list_inner_product", "array_dot_product", "array_inner_product"):
        return _sum_of(_products(*args))
    if name in ("list_distance", "array_distance"):
        return _distance(*args)
    if name in ("list_has_any", "array_has_any"):
        return _call("arrays_overlap", *args)
    if name in ("list_has_all", "array_has_all"):
        return _has_all(*args)
    if name in ("list_position", "list_indexof", "array_indexof"):
        return exp.Nullif(this=_call("array_position", *args), expression=exp.Literal.number(0))
    if name in ("list_unique", "array_unique"):
        return _call("size", _call("array_distinct", _not_null(args[0])))
    if name.startswith("list_"):
        raise NotPortable(name, "a DuckDB list function with no Spark rewrite",
                          "Spark's higher-order functions: transform, filter, aggregate, zip_with, exists, forall")
    return node


def _has_all(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.EQ(this=_call("size", _call("array_except", _not_null(b), a)), expression=exp.Literal.number(0))


def rewrite_lists(tree: exp.Expression) -> exp.Expression:
    """Every DuckDB list spelling in a DuckDB-dialect tree → Spark (raises NotPortable)."""
    lists = list_columns(tree)

    def one(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Bracket):
            return _bracket(node)
        if isinstance(node, exp.Anonymous):
            return _anonymous(node)
        if isinstance(node, exp.Length) and _is_list(node.this, lists):
            return _call("size", node.this.copy())
        if isinstance(node, (exp.Transform, exp.ArrayFilter)):
            node.set("expression", _one_based_index(node.expression))
            return node
        if isinstance(node, exp.ArraySlice):
            return _slice(node.this, node.args.get("start"), node.args.get("end"))
        if isinstance(node, exp.ArrayDistinct):
            return _call("array_distinct", _not_null(node.this.copy()))
        if isinstance(node, exp.ArrayOverlaps):
            return _call("arrays_overlap", node.this.copy(), node.expression.copy())
        if isinstance(node, exp.ArrayContainsAll):
            return _has_all(node.this.copy(), node.expression.copy())
        if isinstance(node, exp.EuclideanDistance):
            return _distance(node.this.copy(), node.expression.copy())
        if isinstance(node, exp.CosineDistance):
            return exp.Sub(this=exp.Literal.number(1), expression=_cosine(node.this.copy(), node.expression.copy()))
        if isinstance(node, exp.ArrayReverse):
            return _call("reverse", node.this.copy())
        if isinstance(node, exp.ArrayPosition):
            return exp.Nullif(this=_call("array_position", *[a.copy() for a in node.iter_expressions()]),
                              expression=exp.Literal.number(0))
        return node

    # children first: a replaced node's children are not visited again, so rewrite them before it
    for node in reversed(list(tree.walk(bfs=False))):
        new = one(node)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree
