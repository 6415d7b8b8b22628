"""Python UDFs: the @udf decorator, discovery under udfs/, and registration in DuckDB connections.

DuckDB types are derived from type hints (str → VARCHAR, list[int] → BIGINT[], a pydantic model →
STRUCT(...)). With ``vectorized=True`` the hints still describe the SQL element types, and the function
receives/returns pyarrow arrays (up to 2,048 rows per call).
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import inspect
import sys
import traceback
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .config import ProjectConfig
from .errors import UdfError
from .extensions import registry

_MARK = "__sqlsynth_udf__"


@dataclass(frozen=True)
class UdfSpec:
    name: str
    function: Callable
    parameters: tuple[str, ...]
    returns: str
    vectorized: bool = False
    null_handling: str = "default"
    side_effects: bool = False
    path: str | None = None


def udf(function: Callable | None = None, *, name: str | None = None, vectorized: bool = False,
        parameters: list[str] | None = None, returns: str | None = None,
        null_handling: str = "default", side_effects: bool = False):
    """Mark a function in udfs/ for registration in every DuckDB connection sqlsynth opens.

    ``parameters``/``returns`` (DuckDB type strings) override what the type hints say.
    ``null_handling='special'`` passes NULLs in instead of short-circuiting to NULL.
    ``side_effects=True`` for functions that must run for every row (random, remote calls).
    """
    if null_handling not in ("default", "special"):
        raise ValueError("null_handling must be 'default' or 'special'")

    def mark(fn: Callable) -> Callable:
        setattr(fn, _MARK, dict(name=name or fn.__name__, vectorized=vectorized, parameters=parameters,
                                returns=returns, null_handling=null_handling, side_effects=side_effects))
        return fn

    return mark(function) if function is not None else mark


_SCALARS: dict[Any, str] = {
    str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN", bytes: "BLOB",
    dt.date: "DATE", dt.datetime: "TIMESTAMP", dt.time: "TIME", dt.timedelta: "INTERVAL",
    decimal.Decimal: "DECIMAL(18,3)", uuid.UUID: "UUID", dict: "JSON", Any: "JSON",
}


def sql_type(hint: Any) -> str:
    """The DuckDB type string for a Python type hint; TypeError when there is none."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        extra = [a for a in args[1:] if isinstance(a, str)]
        return extra[0] if extra else sql_type(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return sql_type(rest[0])
        raise TypeError(f"union {hint} has no single SQL type")
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        element = args[0] if args else str
        return f"{sql_type(element)}[]"
    if origin is dict and len(args) == 2:
        return f"MAP({sql_type(args[0])}, {sql_type(args[1])})"
    if inspect.isclass(hint) and issubclass(hint, BaseModel):
        fields = ", ".join(f'"{n}" {sql_type(f.annotation)}' for n, f in hint.model_fields.items())
        return f"STRUCT({fields})"
    if typing.is_typeddict(hint):
        fields = ", ".join(f'"{n}" {sql_type(t)}' for n, t in typing.get_type_hints(hint).items())
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type for {hint!r}")


def _spec_for(fn: Callable, path: str) -> UdfSpec:
    options = getattr(fn, _MARK)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolved forward references etc.
        raise UdfError(f"cannot read type hints of {fn.__name__}: {exc}", path=path,
                       line=fn.__code__.co_firstlineno) from None
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    try:
        param_types = options["parameters"] or [sql_type(hints[p.name]) for p in params]
        return_type = options["returns"] or sql_type(hints["return"])
    except KeyError as exc:
        raise UdfError(f"{fn.__name__}: missing type hint for {exc.args[0]}", path=path,
                       line=fn.__code__.co_firstlineno,
                       hint="annotate every parameter and the return type, or pass parameters=/returns=") from None
    except TypeError as exc:
        raise UdfError(f"{fn.__name__}: {exc}", path=path, line=fn.__code__.co_firstlineno,
                       hint="use str/int/float/bool/list[...]/a pydantic model, or pass returns='SQL TYPE'") from None
    if len(param_types) != len(params):
        raise UdfError(f"{fn.__name__}: {len(params)} parameters but {len(param_types)} types given",
                       path=path, line=fn.__code__.co_firstlineno)
    return UdfSpec(name=options["name"], function=fn, parameters=tuple(param_types), returns=return_type,
                   vectorized=options["vectorized"], null_handling=options["null_handling"],
                   side_effects=options["side_effects"], path=path)


@dataclass
class UdfModule:
    path: str
    functions: list[UdfSpec]
    pydantic_models: dict[str, type[BaseModel]]


def _error_line(exc: BaseException, file: Path) -> int | None:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return frames[-1].lineno if frames else None


def import_udf_file(file: Path, display_path: str) -> UdfModule:
    """Import one udfs/ file under a private module name; report failures with file and line."""
    module_name = "sqlsynth_udfs." + display_path.removesuffix(".py").replace("/", ".").replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error in user code is reported, not raised as a traceback
        sys.modules.pop(module_name, None)
        raise UdfError(f"cannot import: {type(exc).__name__}: {exc}", path=display_path,
                       line=_error_line(exc, file), hint="fix the Python error in this file") from None
    functions = [_spec_for(obj, display_path) for obj in vars(module).values()
                 if callable(obj) and hasattr(obj, _MARK) and getattr(obj, "__module__", None) == module_name]
    models = {name: obj for name, obj in vars(module).items()
              if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module_name}
    return UdfModule(display_path, functions, models)


@dataclass
class FunctionContext:
    """What built-in function providers (ai_query, retrieval) need to know about the project."""

    project_dir: Path
    config: ProjectConfig
    target_dir: Path
    database_path: Path
    pydantic_models: dict[str, type[BaseModel]] = field(default_factory=dict)
    _close_callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def on_close(self, callback: Callable[[], None]) -> None:
        self._close_callbacks.append(callback)

    def close(self) -> None:
        while self._close_callbacks:
            self._close_callbacks.pop()()


def register_all(con, udfs: list[UdfSpec], context: FunctionContext) -> None:
    """Register the project's UDFs and every plugin's functions (sqlsynth.extensions) on ``con``."""
    import duckdb

    for spec in udfs:
        try:
            con.create_function(
                spec.name, spec.function, [duckdb.sqltype(t) for t in spec.parameters],
                duckdb.sqltype(spec.returns),
                type="arrow" if spec.vectorized else "native",
                null_handling=spec.null_handling, side_effects=spec.side_effects)
        except (duckdb.Error, ValueError, TypeError) as exc:
            line = spec.function.__code__.co_firstlineno
            raise UdfError(f"cannot register {spec.name}: {exc}", path=spec.path, line=line) from None
    for provider in registry().function_providers:
        provider(con, context)
