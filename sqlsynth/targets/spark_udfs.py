"""Python functions on Spark: the project's udfs/*.py functions and the plugins' built-ins (html_to_text,
token_count, chunk_text, embed, ...) registered on the session as Arrow UDFs, with DuckDB's semantics.

One registration point: ``register_python_functions`` when a spark target's session starts. The same
UdfSpecs DuckDB registers are used (the project's from udfs/, the plugins' from
``Registry.python_functions``), so the names, types and NULL handling are the same on both engines:

- a row function (``@udf``) becomes ``udf(..., useArrow=True)``; a vectorized one (``@udf(vectorized=True)``,
  the corpus functions of type arrow) a pandas UDF whose columns are turned back into the pyarrow arrays
  the function receives on DuckDB (one with a STRUCT result is called a row at a time: see
  struct_batch_function);
- DuckDB types become Spark types through sqlglot (VARCHAR[] → array<string>, STRUCT(...) → struct<...>);
- ``null_handling='default'``: a row with a NULL argument is NULL and the function never sees it (DuckDB
  drops those rows before an arrow call too); ``side_effects=True`` marks the UDF non-deterministic.

Shipping: sqlsynth itself is importable in local[N] Python workers (spark_session puts it on their
PYTHONPATH); the udfs/ files go to the executors as a zip of the ``sqlsynth_udfs`` package (the names
they were imported under on the driver) with ``spark.addArtifacts(..., pyfile=True)``, which Spark Connect
and classic sessions both support. On Spark Connect, sqlsynth goes the same way (its own dependencies,
e.g. sentence-transformers for embed, must be installed on the cluster).
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import UdfError
from ..extensions import registry
from ..python_udfs import FunctionContext, UdfSpec

# DuckDB types with no Spark counterpart of the same name, as the values a Python function returns
_PLAIN_TYPES = {exp.DataType.Type.JSON: "string", exp.DataType.Type.UUID: "string",
                exp.DataType.Type.TIMESTAMPTZ: "timestamp", exp.DataType.Type.TIMETZ: "string"}
UDF_PACKAGE = "sqlsynth_udfs"


def spark_ddl(duckdb_type: str) -> str:
    """The Spark DDL type for a DuckDB type string (FLOAT[] → ARRAY<FLOAT>); ValueError when none."""
    try:
        tree = exp.DataType.build(duckdb_type, dialect="duckdb")
    except (SqlglotError, ValueError) as exc:
        raise ValueError(f"unknown type {duckdb_type!r}: {exc}") from None

    def plain(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this in _PLAIN_TYPES:
            return exp.DataType.build(_PLAIN_TYPES[node.this], dialect="spark")
        return node

    return tree.transform(plain).sql(dialect="spark")


# -- the Python side, run in the Spark Python workers -------------------------------------------------

def _plain(value: Any, arrow_type: Any = None) -> Any:
    """A value as DuckDB hands it to a Python function: None for NULL, lists, dicts, and ints where the
    parameter is an integer (pyspark's pandas conversion turns NULL into NaN and an int column into floats)."""
    import pyarrow as pa

    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "asDict"):  # a pyspark Row: a struct
        value = value.asDict()
    elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        fields = {f.name: f.type for f in arrow_type} if arrow_type is not None and pa.types.is_struct(arrow_type) \
            else {}
        return {k: _plain(v, fields.get(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        element = arrow_type.value_type if arrow_type is not None and pa.types.is_list(arrow_type) else None
        return [_plain(v, element) for v in value]
    if isinstance(value, float) and arrow_type is not None and pa.types.is_integer(arrow_type):
        return int(value)
    return value


def _result(value: Any) -> Any:
    """A row function's answer as Spark takes it (a pydantic model → its fields)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list):
        return [_result(v) for v in value]
    return value


def row_function(function: Callable, null_handling: str, arrow_params: list) -> Callable:
    def call(*args: Any) -> Any:
        values = [_plain(a, t) for a, t in zip(args, arrow_params, strict=True)]
        if null_handling == "default" and any(v is None for v in values):
            return None
        return _result(function(*values))

    return call


def _column(series: Any, arrow_type: Any) -> Any:
    """A pandas column (a DataFrame for a struct) as the pyarrow array DuckDB would pass."""
    import pyarrow as pa

    rows = series.to_dict("records") if hasattr(series, "columns") else series.tolist()
    return pa.array([_plain(v, arrow_type) for v in rows], type=arrow_type)


def _is_struct(arrow_type: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_struct(arrow_type)


def _valid_rows(arrays: list) -> list[int]:
    import numpy as np

    valid = np.logical_and.reduce([a.is_valid().to_numpy(zero_copy_only=False) for a in arrays])
    return np.flatnonzero(valid).tolist()


def batch_function(function: Callable, null_handling: str, arrow_params: list, arrow_return: Any) -> Callable:
    import pandas as pd

    def call(*columns: Any) -> Any:
        import pyarrow as pa

        arrays = [_column(c, t) for c, t in zip(columns, arrow_params, strict=True)]
        size = len(arrays[0]) if arrays else 0
        keep = _valid_rows(arrays) if null_handling == "default" and arrays else None
        if keep is not None and len(keep) < size:  # DuckDB calls the function on rows without a NULL only
            taken = pa.array(keep, type=pa.int64())
            answers = pa.array(function(*[a.take(taken) for a in arrays]), type=arrow_return).to_pylist()
            out: list[Any] = [None] * size
            for i, answer in zip(keep, answers, strict=True):
                out[i] = answer
            return pd.Series(out, dtype=object)
        result = function(*arrays)
        return pd.Series((result if isinstance(result, (pa.Array, pa.ChunkedArray))
                          else pa.array(result, type=arrow_return)).to_pylist(), dtype=object)

    call.__annotations__ = {"columns": pd.Series, "return": pd.Series}
    return call


def struct_batch_function(function: Callable, null_handling: str, arrow_params: list, arrow_return: Any) -> Callable:
    """A vectorized function with a STRUCT result, called one row at a time: a pandas UDF returns a struct
    column as a DataFrame, which has no way to say that a row is NULL."""
    def call(*args: Any) -> Any:
        import pyarrow as pa

        values = [_plain(a, t) for a, t in zip(args, arrow_params, strict=True)]
        if null_handling == "default" and any(v is None for v in values):
            return None
        arrays = [pa.array([v], type=t) for v, t in zip(values, arrow_params, strict=True)]
        return pa.array(function(*arrays), type=arrow_return)[0].as_py()

    return call


def python_error(text: str) -> str | None:
    """One line for a Python function that failed in a Spark worker (Spark's message is the worker's whole
    traceback): 'udfs/x.py:12 (fn): ValueError: ...' for a udfs/ function, else 'CorpusError: ...'."""
    if "Traceback (most recent call last):" not in text:
        return None
    block = text.rsplit("Traceback (most recent call last):", 1)[1].splitlines()
    last = next((line for line in block if line.strip() and not line[0].isspace()), None)
    if last is None:
        return None
    kind, _, message = last.partition(": ")
    frames = re.findall(rf'File "[^"]*/{UDF_PACKAGE}/([^"]+)", line (\d+), in (\S+)', "\n".join(block))
    where = f"{frames[-1][0]}:{frames[-1][1]} ({frames[-1][2]}): " if frames else ""
    return f"{where}{kind.rsplit('.', 1)[-1]}: {message}" if message else where + kind


# -- registration, on the driver ------------------------------------------------------------------------

def _arrow_type(ddl: str) -> Any:
    from pyspark.sql.pandas.types import to_arrow_type
    from pyspark.sql.types import DataType

    if not hasattr(DataType, "fromDDL"):  # pyspark 3.5 (the Iceberg test's Spark): parsed on the JVM
        from pyspark.sql.types import _parse_datatype_string

        return to_arrow_type(_parse_datatype_string(ddl))
    return to_arrow_type(DataType.fromDDL(ddl))


def _register(spark: Any, spec: UdfSpec) -> None:
    from pyspark.sql.functions import pandas_udf, udf

    try:
        returns = spark_ddl(spec.returns)
        params = [_arrow_type(spark_ddl(p)) for p in spec.parameters]
        arrow_return = _arrow_type(returns)
        if spec.vectorized and not _is_struct(arrow_return):
            function = pandas_udf(batch_function(spec.function, spec.null_handling, params, arrow_return), returns)
        elif spec.vectorized:
            function = udf(struct_batch_function(spec.function, spec.null_handling, params, arrow_return), returns,
                           useArrow=True)
        else:
            function = udf(row_function(spec.function, spec.null_handling, params), returns, useArrow=True)
    except Exception as exc:  # a DuckDB type Spark has no spelling for, or one pyspark refuses
        line = getattr(getattr(spec.function, "__code__", None), "co_firstlineno", None)
        raise UdfError(f"cannot register {spec.name} on Spark: {str(exc).splitlines()[0]}", path=spec.path,
                       line=line, hint="use types both engines have (VARCHAR, BIGINT, DOUBLE, lists, "
                                       "structs), or returns='...'") from None
    if spec.side_effects:
        function = function.asNondeterministic()
    spark.udf.register(spec.name, function)


def _udf_zip(specs: list[UdfSpec], state_dir: Path) -> Path | None:
    """The udfs/ modules the specs come from, as the package the driver imported them into."""
    modules = sorted({spec.function.__module__ for spec in specs
                      if spec.function.__module__.startswith(UDF_PACKAGE + ".")})
    files = {name: Path(sys.modules[name].__file__) for name in modules
             if getattr(sys.modules.get(name), "__file__", None)}
    if not files:
        return None
    entries: dict[str, bytes] = {}
    for name, file in files.items():
        parts = name.split(".")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]) + "/__init__.py", b"")
        entries["/".join(parts) + ".py"] = file.read_bytes()
    digest = hashlib.sha256(repr(sorted(entries.items())).encode()).hexdigest()[:12]
    path = state_dir / f"{UDF_PACKAGE}-{digest}.zip"  # a new name when a file changes: Spark refuses a
    if not path.exists():                             # second artifact of the same name and other content
        state_dir.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        with zipfile.ZipFile(temp, "w") as archive:
            for entry, data in sorted(entries.items()):
                archive.writestr(entry, data)
        temp.replace(path)
    return path


def _sqlsynth_zip(state_dir: Path) -> Path:
    """sqlsynth itself, for Spark Connect executors (a local[N] worker imports it from this checkout)."""
    import sqlsynth

    root = Path(sqlsynth.__file__).resolve().parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files if p.suffix == ".py")).hexdigest()[:12]
    path = state_dir / f"sqlsynth-{digest}.zip"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, "sqlsynth/" + file.relative_to(root).as_posix())
        temp.replace(path)
    return path


def function_specs(project: Any, context: FunctionContext) -> list[UdfSpec]:
    """The project's udfs/ functions, then every plugin's built-ins whose names the project does not take."""
    specs = list(project.udfs)
    taken = {spec.name.lower() for spec in specs}
    for provider in registry().python_functions:
        for spec in provider(context):
            if spec.name.lower() not in taken:
                specs.append(spec)
                taken.add(spec.name.lower())
    return specs


def register_python_functions(spark: Any, project: Any, connect: bool) -> list[str]:
    """Register every Python function on ``spark``; ``connect``: ship sqlsynth too. Returns the names."""
    context = FunctionContext(project.dir, project.config, project.target_dir, project.database_path,
                              project.pydantic_models)
    specs = function_specs(project, context)
    state_dir = project.target_dir / "spark" / "artifacts"
    artifacts = [_sqlsynth_zip(state_dir)] if connect else []
    udf_zip = _udf_zip(specs, state_dir)
    if udf_zip is not None:
        artifacts.append(udf_zip)
    if artifacts:
        spark.addArtifacts(*(str(p) for p in artifacts), pyfile=True)
    for spec in specs:
        _register(spark, spec)
    return [spec.name for spec in specs]
