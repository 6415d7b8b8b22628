"""Seed reader for Stack Exchange data dumps (``Posts.xml``, ``Comments.xml``, ``Users.xml``, ...).

A dump file is one root element holding one ``<row .../>`` per record, its fields as attributes::

    <posts>
      <row Id="1" PostTypeId="1" Score="12" Title="..." Body="&lt;p&gt;..." CreationDate="2011-..."/>
    </posts>

The file is parsed as a stream with expat (1 MiB at a time) and handed to DuckDB as arrow record
batches, so a 1 GB dump never needs 1 GB of Python objects. Columns are typed: ``Id``/``*Id``,
``Score``, ``*Count`` and other known counters are BIGINT, ``*Date`` is TIMESTAMP, the rest VARCHAR;
``column_types`` in the seed's YAML overrides any of them. Errors name the file, line and column.

Seed config (schema YAML, ``seeds: - name: Posts  config: {...}``):

- ``column_types: {Score: INTEGER, Extra: VARCHAR}``: types (also declares attributes that appear
  only late in the file);
- ``required_columns: [Id, PostTypeId]``: attributes every row must have (default: ``Id``, plus
  ``PostTypeId`` for Posts);
- ``keep_partial: true``: on malformed XML keep the rows parsed before the error (with a warning)
  instead of failing;
- ``allow_empty: true``: accept a dump with no rows (an empty corpus is an error by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import XmlSeedError

CHUNK_BYTES = 1 << 20
BATCH_ROWS = 8192
ROW_ELEMENT = "row"

# Column order of the known dump files (more may appear: they are added after these, by first use).
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "posts": ("Id", "PostTypeId", "AcceptedAnswerId", "ParentId", "CreationDate", "DeletionDate", "Score",
              "ViewCount", "Body", "OwnerUserId", "OwnerDisplayName", "LastEditorUserId",
              "LastEditorDisplayName", "LastEditDate", "LastActivityDate", "Title", "Tags", "AnswerCount",
              "CommentCount", "FavoriteCount", "ClosedDate", "CommunityOwnedDate", "ContentLicense"),
    "comments": ("Id", "PostId", "Score", "Text", "CreationDate", "UserDisplayName", "UserId",
                 "ContentLicense"),
    "users": ("Id", "Reputation", "CreationDate", "DisplayName", "LastAccessDate", "WebsiteUrl", "Location",
              "AboutMe", "Views", "UpVotes", "DownVotes", "AccountId"),
    "votes": ("Id", "PostId", "VoteTypeId", "UserId", "CreationDate", "BountyAmount"),
    "badges": ("Id", "UserId", "Name", "Date", "Class", "TagBased"),
    "tags": ("Id", "TagName", "Count", "ExcerptPostId", "WikiPostId"),
    "postlinks": ("Id", "CreationDate", "PostId", "RelatedPostId", "LinkTypeId"),
    "posthistory": ("Id", "PostHistoryTypeId", "PostId", "RevisionGUID", "CreationDate", "UserId",
                    "UserDisplayName", "Comment", "Text", "ContentLicense"),
}
REQUIRED: dict[str, tuple[str, ...]] = {"posts": ("Id", "PostTypeId")}
_INTEGER_NAMES = {"Score", "Reputation", "Views", "UpVotes", "DownVotes", "BountyAmount", "Class", "Count"}

# DuckDB type names accepted in column_types → how the column is built.
_TYPE_ALIASES = {
    "BIGINT": "int64", "INT8": "int64", "LONG": "int64", "INTEGER": "int32", "INT": "int32", "INT4": "int32",
    "SMALLINT": "int16", "DOUBLE": "float64", "FLOAT8": "float64", "FLOAT": "float32", "REAL": "float32",
    "BOOLEAN": "bool", "BOOL": "bool", "VARCHAR": "string", "TEXT": "string", "STRING": "string",
    "TIMESTAMP": "timestamp", "DATETIME": "timestamp", "DATE": "date",
}


_SQL_NAMES = {"int64": "BIGINT", "int32": "INTEGER", "int16": "SMALLINT", "float64": "DOUBLE", "float32": "FLOAT",
              "bool": "BOOLEAN", "string": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE"}


def default_type(column: str) -> str:
    """The type a Stack Exchange attribute gets without column_types."""
    if column == "Id" or column.endswith("Id") or column.endswith("Count") or column in _INTEGER_NAMES:
        return "int64"
    if column.endswith("Date") or column == "Date":
        return "timestamp"
    if column == "TagBased":
        return "bool"
    return "string"


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"int64": pa.int64(), "int32": pa.int32(), "int16": pa.int16(), "float64": pa.float64(),
            "float32": pa.float32(), "bool": pa.bool_(), "string": pa.string(),
            "timestamp": pa.timestamp("us"), "date": pa.date32()}[kind]


class _Schema:
    """Column names and kinds of one dump file; fixed once the first chunk has been seen."""

    def __init__(self, path: Path, display: str, config: dict):
        self.display = display
        stem = path.stem.lower()
        self.overrides = {str(k): self._kind(str(k), str(v)) for k, v in (config.get("column_types") or {}).items()}
        self.names: list[str] = list(KNOWN_COLUMNS.get(stem, ("Id",)))
        for name in self.overrides:
            if name not in self.names:
                self.names.append(name)
        required = config.get("required_columns")
        self.required = tuple(required) if required is not None else REQUIRED.get(stem, ("Id",))

    def _kind(self, column: str, sql_type: str) -> str:
        kind = _TYPE_ALIASES.get(sql_type.strip().upper())
        if kind is None:
            raise XmlSeedError(f"column_types: type '{sql_type}' of column '{column}' is not supported for "
                               "XML seeds", path=self.display,
                               hint=f"use one of {', '.join(sorted(_TYPE_ALIASES))}, or cast in a model")
        return kind

    def kind(self, column: str) -> str:
        return self.overrides.get(column) or default_type(column)

    def arrow(self) -> Any:
        import pyarrow as pa

        return pa.schema([(name, _arrow_type(self.kind(name))) for name in self.names])


class _Batch:
    """Rows (attribute dicts) collected by the expat callback, with the byte offset of each."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []
        self.offsets: list[int] = []


class StackExchangeReader:
    """Streams one dump file as arrow record batches; ``batches()`` raises XmlSeedError on bad input."""

    def __init__(self, path: Path, display: str, config: dict):
        self.path, self.display, self.config = path, display, config
        self.schema = _Schema(path, display, config)
        self.keep_partial = bool(config.get("keep_partial", False))
        self.allow_empty = bool(config.get("allow_empty", False))
        self.rows_read = 0
        self.partial_error: XmlSeedError | None = None

    # -- parsing -------------------------------------------------------------------------------------
    def _parser(self, batch: _Batch) -> Any:
        from xml.parsers import expat

        parser = expat.ParserCreate()
        rows, offsets = batch.rows, batch.offsets
        append_row, append_offset = rows.append, offsets.append

        # Every <row> is a record (in a dump they are the root's children); one Python call per row
        # and no end-element handler: expat's own speed is the limit.
        def start(name: str, attrs: dict[str, str]) -> None:
            if name == ROW_ELEMENT:
                append_row(attrs)
                append_offset(parser.CurrentByteIndex)

        parser.StartElementHandler = start
        return parser

    def _malformed(self, exc: Any) -> XmlSeedError:
        from xml.parsers import expat

        reason = expat.ErrorString(exc.code) if getattr(exc, "code", None) else str(exc)
        return XmlSeedError(f"malformed XML: {reason}", path=self.display, line=exc.lineno,
                            column=exc.offset + 1,
                            hint="fix the file at that position (a truncated download?), or set "
                                 "keep_partial: true in the seed's config to keep the rows before it")

    def batches(self) -> Iterator[Any]:
        from xml.parsers import expat

        batch = _Batch()
        parser = self._parser(batch)
        first = True
        try:
            with self.path.open("rb") as handle:
                while True:
                    data = handle.read(CHUNK_BYTES)
                    try:
                        parser.Parse(data, not data)
                    except expat.ExpatError as exc:
                        error = self._malformed(exc)
                        if not self.keep_partial:
                            raise error from None
                        self.partial_error = error
                        data = b""
                    if first:
                        self._fix_schema(batch)
                        first = False
                    if len(batch.rows) >= BATCH_ROWS or (not data and batch.rows):
                        yield self._to_arrow(batch)
                        batch.rows.clear()
                        batch.offsets.clear()
                    if not data:
                        break
        except OSError as exc:
            raise XmlSeedError(f"cannot read the file: {exc.strerror}", path=self.display) from None
        if self.partial_error is not None:
            _warn(f"warning: {self.partial_error.location}: {self.partial_error.message}; kept the "
                  f"{self.rows_read:,} rows before it (keep_partial: true)")
        if self.rows_read == 0 and not self.allow_empty:
            raise XmlSeedError(f"the corpus is empty: no <{ROW_ELEMENT}> elements under the root element",
                               path=self.display, line=1,
                               hint=f"a Stack Exchange dump holds one <{ROW_ELEMENT} .../> per record; "
                                    "set allow_empty: true in the seed's config to accept an empty file")

    def _fix_schema(self, batch: _Batch) -> None:
        """Columns = the known ones for this file + attributes seen in the first chunk, in order."""
        known = set(self.schema.names)
        for row in batch.rows:
            for name in row:
                if name not in known:
                    known.add(name)
                    self.schema.names.append(name)
        self.arrow_schema = self.schema.arrow()
        self._known = frozenset(self.schema.names)
        import pyarrow as pa

        self._string_struct = pa.struct([(name, pa.string()) for name in self.schema.names])

    # -- typing --------------------------------------------------------------------------------------
    def _to_arrow(self, batch: _Batch) -> Any:
        import pyarrow as pa

        rows = batch.rows
        unknown = set().union(*rows) - self._known
        if unknown:
            name = sorted(unknown)[0]
            index = next(i for i, r in enumerate(rows) if name in r)
            raise self._row_error(batch, index, f"attribute '{name}' first appears after the first MiB of "
                                  "the file, so it has no column",
                                  hint=f"declare it in the seed's config: column_types: {{{name}: VARCHAR}}")
        # One C++ pass from the attribute dicts to string columns, then a vectorised cast per column.
        strings = pa.array(rows, type=self._string_struct)
        arrays = []
        for position, name in enumerate(self.schema.names):
            column = strings.field(position)
            if column.null_count and name in self.schema.required:
                index = column.is_null().to_pylist().index(True)
                raise self._row_error(batch, index, f"row is missing the required attribute '{name}'",
                                      hint="every row of this file needs it; fix the row, or change "
                                           "required_columns in the seed's config")
            arrays.append(self._typed(name, column, batch))
        self.rows_read += len(rows)
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _typed(self, name: str, strings: Any, batch: _Batch) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = self.schema.kind(name)
        if kind == "string":
            return strings
        if kind == "bool":
            strings = pc.utf8_lower(pc.utf8_trim_whitespace(strings))
        target = _arrow_type(kind)
        try:
            return strings.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = strings.to_pylist()
            index = self._first_bad(values, target)
            raise self._row_error(batch, index, f"attribute {name}=\"{values[index]}\" is not a valid "
                                  f"{_SQL_NAMES[kind]}",
                                  hint=f"fix the value, or read it as text: column_types: {{{name}: VARCHAR}}") \
                from None

    @staticmethod
    def _first_bad(values: list[str | None], target: Any) -> int:
        import pyarrow as pa

        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                pa.array([value], type=pa.string()).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return i
        return 0

    def _row_error(self, batch: _Batch, index: int, message: str, hint: str) -> XmlSeedError:
        line, column = self._position(batch.offsets[index])
        return XmlSeedError(message, path=self.display, line=line, column=column, hint=hint)

    def _position(self, offset: int) -> tuple[int, int]:
        """Line and column (1-based) of a byte offset: only computed when an error is reported."""
        line, last_newline, done = 1, -1, 0
        with self.path.open("rb") as handle:
            while done < offset:
                data = handle.read(min(CHUNK_BYTES, offset - done))
                if not data:
                    break
                count = data.count(b"\n")
                if count:
                    line += count
                    last_newline = done + data.rindex(b"\n")
                done += len(data)
        return line, offset - last_newline

    def reader(self) -> Any:
        """A pyarrow RecordBatchReader over the file (the first chunk is parsed to fix the schema)."""
        import pyarrow as pa

        iterator = self.batches()
        try:
            first = next(iterator)
        except StopIteration:  # allow_empty and no rows
            return pa.RecordBatchReader.from_batches(self.arrow_schema, iter(()))

        def chained() -> Iterator[Any]:
            yield first
            yield from iterator

        return pa.RecordBatchReader.from_batches(self.arrow_schema, chained())


def _warn(text: str) -> None:
    try:
        from ..console import console

        console.print(text, style="yellow", markup=False)
    except Exception:  # console unavailable (library use): stderr
        import sys

        print(text, file=sys.stderr)


def read_stack_exchange_xml(path: Path, display_path: str, config: dict) -> Any:
    """Seed reader for ``.xml`` (registered by sqlsynth.corpus.plugin): a RecordBatchReader streaming the dump.

    Errors found before the first batch (malformed start, empty corpus, bad first rows) are raised
    here; later ones are raised while DuckDB reads the stream.
    """
    return StackExchangeReader(path, display_path, dict(config or {})).reader()

