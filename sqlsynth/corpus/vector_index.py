"""The ``vector_index`` materialization: a table in DuckDB plus a Chroma collection of its rows.

```sql
{{ config(materialized='vector_index', id_column='chunk_id', search_column='question',
          return_column='answer', collection='gardening', embedding_model='all-minilm-l6-v2') }}
select ...
```

- ``search_column`` is embedded (what a query is compared with); ``return_column`` (default: the same
  column) is what ``retrieve()`` returns — search by question, return the answer.
- ``id_column`` (default ``id``) must be unique and not NULL; ``metadata_columns`` (optional list)
  are stored with each entry.
- Incremental by id: each entry carries a hash of its search/return text and metadata; a re-run
  embeds only new or changed rows and deletes ids that are gone. A different ``embedding_model`` or
  ``--full-refresh`` rebuilds the collection.
- Rows whose search text is NULL or blank are not indexed (counted in the message).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..materialize import BuildContext, BuildResult, build_table_from, quote
from . import models, store
from .errors import CorpusError

EMBED_BATCH = 256


def _column(node: Any, key: str, columns: list[str], default: str | None = None) -> str:
    value = node.config.get(key, default)
    if value is None:
        raise ConfigError(f"vector_index needs {key}", path=node.original_file_path,
                          hint=f"add {key}='<column>' to config(); columns: {', '.join(columns)}")
    if value not in columns:
        raise ConfigError(f"{key} '{value}' is not a column of the model", path=node.original_file_path,
                          hint=did_you_mean(value, columns) or f"columns: {', '.join(columns)}")
    return value


def _hash(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, default=str, ensure_ascii=False).encode()).hexdigest()[:20]


def _settings(ctx: BuildContext, columns: list[str]) -> dict[str, Any]:
    node = ctx.node
    search = _column(node, "search_column", columns)
    meta = node.config.get("metadata_columns") or []
    meta = [meta] if isinstance(meta, str) else list(meta)
    for name in meta:
        if name not in columns:
            raise ConfigError(f"metadata_columns names '{name}', which is not a column of the model",
                              path=node.original_file_path,
                              hint=did_you_mean(name, columns) or f"columns: {', '.join(columns)}")
    name = node.config.get("collection") or node.alias
    return {
        "id": _column(node, "id_column", columns, "id"),
        "search": search,
        "return": _column(node, "return_column", columns, search),
        "metadata": meta,
        "collection": store.check_collection_name(name, node.original_file_path),
        "model_dir": models.embedding_model_dir(node.config.get("embedding_model"), ctx.db.project.dir,
                                              node.original_file_path),
    }


def _rows(cur: Any, relation: str, s: dict[str, Any], path: str) -> tuple[list[tuple], int]:
    meta = "".join(f", {quote(m)}" for m in s["metadata"])
    rows = cur.execute(
        f"select cast({quote(s['id'])} as varchar), cast({quote(s['search'])} as varchar), "
        f"cast({quote(s['return'])} as varchar){meta} from {relation}").fetchall()
    if any(r[0] is None for r in rows):
        raise CorpusError(f"id_column '{s['id']}' is NULL in some rows", path=path,
                          hint="every indexed row needs an id; filter NULLs or build one (e.g. with row_number())")
    seen: set[str] = set()
    for r in rows:
        if r[0] in seen:
            raise CorpusError(f"id_column '{s['id']}' is not unique: '{r[0]}' appears more than once",
                              path=path, hint="make the id unique, e.g. post id || '-' || chunk number")
        seen.add(r[0])
    kept = [r for r in rows if r[1] is not None and r[1].strip()]
    return kept, len(rows) - len(kept)


def _metadata(row: tuple, s: dict[str, Any], digest: str) -> dict[str, Any]:
    out: dict[str, Any] = {store.HASH_KEY: digest}
    for name, value in zip(s["metadata"], row[3:], strict=True):
        if value is None:
            continue
        out[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out


def build_vector_index(ctx: BuildContext) -> BuildResult:
    """Sync the Chroma collection from the model's rows, then swap the DuckDB table in.

    The rows are staged in a temp table first: a model that cannot be indexed (bad config, an empty
    corpus, duplicate ids) leaves both the previous table and the previous collection as they were.
    """
    node, cur = ctx.node, ctx.cur
    staged = quote(f"{node.alias}__sqlsynth_index")
    cur.execute(f"create or replace temp table {staged} as\n{ctx.sql}")
    try:
        columns = [d[0] for d in cur.execute(f"select * from {staged} limit 0").description]
        s = _settings(ctx, columns)
        rows, blank = _rows(cur, staged, s, node.original_file_path)
        if not rows:
            total = cur.execute(f"select count(*) from {staged}").fetchall()[0][0]
            raise CorpusError(f"nothing to index: the model returned {total} rows"
                              + (f", all with a NULL or blank {s['search']}" if total else ""),
                              path=node.original_file_path,
                              hint="an empty corpus: check the seed/source and the filters upstream "
                                   "(e.g. the min_score/max_body_chars vars)")
        summary = _sync(ctx, s, rows, blank)
        build_table_from(ctx, f"select * from {staged}")
    finally:
        cur.execute(f"drop table if exists {staged}")
    return BuildResult(len(rows), summary)


def _sync(ctx: BuildContext, s: dict[str, Any], rows: list[tuple], blank: int) -> str:
    """Upsert new/changed rows (embedding only those), delete vanished ids; the summary message."""
    target = ctx.db.project.target_dir
    identity = models.model_identity(s["model_dir"])
    collection, existing = _open(target, s["collection"], identity, ctx.node.name, ctx.full_refresh)
    wanted = {r[0]: (r, _hash(r[1], r[2], r[3:])) for r in rows}
    todo = [(r, digest) for id_, (r, digest) in wanted.items() if existing.get(id_) != digest]
    stale = [id_ for id_ in existing if id_ not in wanted]
    embedder = models.load_embedder(str(s["model_dir"])) if todo else None
    started = time.perf_counter()
    limit = min(store.max_batch(target), EMBED_BATCH * 8)
    for start in range(0, len(todo), limit):
        part = todo[start:start + limit]
        vectors = models.encode(embedder, [r[1] for r, _ in part], batch_size=64)
        collection.upsert(ids=[r[0] for r, _ in part], embeddings=vectors,
                          documents=[r[2] if r[2] is not None else "" for r, _ in part],
                          metadatas=[_metadata(r, s, digest) for r, digest in part])
    for start in range(0, len(stale), 5000):
        collection.delete(ids=stale[start:start + 5000])
    elapsed = time.perf_counter() - started
    parts = [f"{len(rows):,} indexed", f"{len(todo):,} embedded", f"{len(rows) - len(todo):,} unchanged"]
    if stale:
        parts.append(f"{len(stale):,} removed")
    if blank:
        parts.append(f"{blank:,} blank skipped")
    rate = f", {len(todo) / elapsed:,.0f} docs/s" if todo and elapsed > 0 else ""
    return f"{', '.join(parts)} → collection '{s['collection']}'{rate}"


def _open(target: Path, name: str, identity: str, node_name: str, full_refresh: bool) -> tuple[Any, dict[str, str]]:
    """The collection to sync (recreated on --full-refresh or a model change) and its id → hash map."""
    if name in store.collection_names(target):
        collection = store.client(target).get_collection(name)
        meta = collection.metadata or {}
        if not full_refresh and meta.get(store.MODEL_KEY) == identity:
            return collection, store.existing_hashes(collection)
        store.drop_collection(target, name)
    collection = store.create_collection(target, name, {store.MODEL_KEY: identity, "sqlsynth_model": node_name})
    return collection, {}

