"""Seeds: CSV / JSONL / Parquet files loaded as tables, replaced atomically on every `seed`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .errors import SeedError, SqlsynthError
from .extensions import registry
from .materialize import BuildResult, in_transaction, quote, relation


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_EMPTY_HINT = "a seed needs its columns: a CSV header row, or at least one JSON object per line"


def csv_scan(path: Path, rel: str, delimiter: str, quotechar: str) -> tuple[list[str], bool]:
    """The header, and whether the file has blank lines; checks every row has as many fields (DuckDB
    would guess instead) and that every quote is closed (DuckDB only says its sniffer failed)."""
    blank_lines = False
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a BOM is not part of the header
        reader = csv.reader(handle, delimiter=delimiter, quotechar=quotechar, strict=True)
        record_start = 1
        try:
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise SeedError("the CSV file is empty (no header row)", path=rel, hint=_EMPTY_HINT)
            record_start = reader.line_num + 1
            for row in reader:
                blank_lines = blank_lines or not row
                if row and len(row) != len(header):
                    raise SeedError(f"row has {len(row)} fields but the header has {len(header)}",
                                    path=rel, line=reader.line_num,
                                    hint="quote values that contain the delimiter, or fix the row")
                record_start = reader.line_num + 1
        except csv.Error as exc:
            raise _csv_error(exc, rel, record_start, reader.line_num, quotechar) from None
        except UnicodeDecodeError as exc:
            raise SeedError(f"not UTF-8 text: {exc.reason}", path=rel, hint="save the file as UTF-8") from None
    duplicates = {c for c in header if header.count(c) > 1}
    if duplicates:
        raise SeedError(f"duplicate column names {sorted(duplicates)}", path=rel, line=1)
    return header, blank_lines


def csv_header(path: Path, rel: str, delimiter: str, quotechar: str) -> list[str]:
    """The checked header row of a CSV seed (see csv_scan)."""
    return csv_scan(path, rel, delimiter, quotechar)[0]


def _csv_error(exc: csv.Error, rel: str, record_start: int, line: int, quotechar: str) -> SeedError:
    if "unexpected end of data" in str(exc) or line > record_start:
        return SeedError(f"a quoted value opened on this line is never closed (the file ends at line {line})",
                         path=rel, line=record_start,
                         hint=f"close the {quotechar} quote, or write a literal {quotechar} inside a quoted "
                              f"value as {quotechar * 2}")
    return SeedError(f"malformed CSV: {exc}", path=rel, line=line,
                     hint=f"a value containing {quotechar} must be quoted whole, with inner {quotechar} doubled")


def _json_kind(value: Any) -> str | None:
    """The column type family a JSON value needs (None fits any column)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}[type(value)]


def _check_jsonl(path: Path, rel: str) -> None:
    """Every line one JSON object, at least one, and one type per key: DuckDB would otherwise make a
    JSON column whose strings read '"a"' (mixed types) or a table without columns (an empty file)."""
    first: dict[str, tuple[str, int]] = {}
    objects = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeedError(f"invalid JSON: {exc.msg}", path=rel, line=number,
                                hint="each line must be one JSON object") from None
            if not isinstance(value, dict):
                raise SeedError("each line must be a JSON object", path=rel, line=number)
            objects += 1
            for key, item in value.items():
                kind = _json_kind(item)
                seen = first.setdefault(key, (kind, number)) if kind else None
                if seen and seen[0] != kind:
                    raise SeedError(f"key '{key}' is {kind} here but {seen[0]} on line {seen[1]}", path=rel,
                                    line=number, hint=f"give '{key}' one type on every line (quote numbers "
                                                      "that are really strings)")
    if not objects:
        raise SeedError("the JSONL file is empty (no JSON object)", path=rel, hint=_EMPTY_HINT)


def _check_parquet(path: Path, rel: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path).close()
    except (pa.ArrowException, OSError) as exc:
        raise SeedError(f"not a readable Parquet file: {str(exc).splitlines()[0]}", path=rel,
                        hint="the file is truncated or not Parquet: export it again "
                             "(e.g. pandas.DataFrame.to_parquet)") from None


def seed_select(node, project_dir: Path) -> str:
    """The SELECT that reads a seed file, with column_types applied."""
    path = project_dir / node.original_file_path
    rel = node.original_file_path
    types: dict[str, str] = dict(node.config.get("column_types") or {})
    suffix = path.suffix.lower()
    if suffix == ".csv":
        delimiter = node.config.get("delimiter", ",")
        quotechar = node.config.get("quote", '"')
        header, blank_lines = csv_scan(path, rel, delimiter, quotechar)
        _check_type_columns(types, header, node)
        options = ["header = true", f"delim = {_literal(delimiter)}", f"quote = {_literal(quotechar)}",
                   "strict_mode = true", "sample_size = -1"]
        if types:
            options.append("types = {" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in types.items()) + "}")
        select = f"select * from read_csv({_literal(str(path))}, {', '.join(options)})"
        if blank_lines and len(header) == 1:  # DuckDB skips blank lines unless there is one column
            select += f" where {quote(header[0])} is not null"
        return select
    if suffix in (".jsonl", ".ndjson"):
        _check_jsonl(path, rel)
        reader = f"read_json({_literal(str(path))}, format = 'newline_delimited', sample_size = -1)"
    else:
        _check_parquet(path, rel)
        reader = f"read_parquet({_literal(str(path))})"
    if not types:
        return f"select * from {reader}"
    replaces = ", ".join(f"cast({quote(k)} as {v}) as {quote(k)}" for k, v in types.items())
    return f"select * replace ({replaces}) from {reader}"


def _check_type_columns(types: dict[str, str], header: list[str], node) -> None:
    for column in types:
        if column not in header:
            from .errors import did_you_mean
            raise SeedError(f"column_types names '{column}', which is not a column of this seed",
                            path=node.yaml_path or node.original_file_path, line=node.yaml_line,
                            hint=did_you_mean(column, header) or f"columns: {', '.join(header)}")


def _remember_failure(reader: Any, failures: list[SqlsynthError]) -> Any:
    """Pass batches through, keeping a reader's SqlsynthError that DuckDB would flatten to text."""
    import pyarrow as pa

    def batches():
        try:
            yield from reader
        except SqlsynthError as exc:
            failures.append(exc)
            raise

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def load_seed(db: Any, node) -> BuildResult:
    """Build the seed table under a temporary name, then swap it in one transaction."""
    import duckdb

    cur = db.cursor()
    suffix = Path(node.original_file_path).suffix.lower()
    failures: list[SqlsynthError] = []
    readers = registry().seed_readers
    if suffix in readers:
        reader = readers[suffix](db.project.dir / node.original_file_path, node.original_file_path,
                                 node.config)
        view = f"__sqlsynth_seed_{node.alias}"
        cur.register(view, _remember_failure(reader, failures))
        select_sql = f"select * from {quote(view)}"
    else:
        select_sql = seed_select(node, db.project.dir)
    tmp = relation(node.schema, f"{node.alias}__sqlsynth_tmp")
    existing = db.relation_type(node.schema, node.alias)

    def swap() -> int:
        cur.execute(f"create or replace table {tmp} as {select_sql}")
        if existing:
            cur.execute(f"drop {'view' if existing == 'view' else 'table'} {node.relation}")
        cur.execute(f"alter table {tmp} rename to {quote(node.alias)}")
        return cur.execute(f"select count(*) from {node.relation}").fetchall()[0][0]

    try:
        rows = in_transaction(cur, swap)
    except duckdb.Error as exc:
        if failures:  # the reader's own error (file, line, column, fix), not DuckDB's wrapper of it
            raise failures[0] from None
        message = str(exc).split("\n")[0]
        hint = ("check the values against column_types in the seed's YAML" if node.config.get("column_types")
                else "check the file's format; column_types in the seed's YAML can fix a column's type")
        raise SeedError(f"cannot load seed: {message}", path=node.original_file_path, hint=hint) from None
    return BuildResult(rows, f"{rows:,} rows")
