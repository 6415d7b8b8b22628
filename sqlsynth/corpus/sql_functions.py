"""Built-in SQL functions of the corpus path, registered in every connection sqlsynth opens.

| function | returns |
| --- | --- |
| ``html_to_text(html)`` | VARCHAR: readable text (entities, code blocks, lists, links kept) |
| ``token_count(text, model)`` | INTEGER: tokens by that model's own tokenizer (endpoint name, bundled name, dir) |
| ``chunk_text(text, max_tokens, overlap)`` | VARCHAR[]: token windows (embedding model's tokenizer) |
| ``embed(text)`` | FLOAT[384]-like FLOAT[]: normalised all-MiniLM-L6-v2 embedding |
| ``retrieve(collection, query, k)`` | STRUCT(id, text, distance)[]: k nearest entries, most similar first |
| ``trim_context(chunks, max_tokens, model)`` | STRUCT(chunks, dropped, tokens): least similar chunks dropped until they fit |
| ``context_window(endpoint)`` | INTEGER: the endpoint's context window (config, else the model's own) |
| ``read_documents(pattern)`` | STRUCT(path, format, title, text)[]: a folder of .md/.txt/.html files |

Errors raised here reach the user through DuckDB as one line, so they carry their hint inline.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..errors import SqlsynthError
from .errors import CorpusError, inline

CHUNK = "STRUCT(id VARCHAR, text VARCHAR, distance DOUBLE)"
CHUNKS = f"{CHUNK}[]"
TRIMMED = f"STRUCT(chunks {CHUNKS}, dropped INTEGER, tokens INTEGER)"
DOCUMENT = "STRUCT(path VARCHAR, format VARCHAR, title VARCHAR, text VARCHAR)"
DOCUMENT_FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
                    ".html": "html", ".htm": "html"}
SEPARATOR_TOKENS = 2  # the blank line between two chunks in a prompt


def _pylist(column: Any) -> list[Any]:
    return column.to_pylist() if hasattr(column, "to_pylist") else list(column)


def _guard(function):
    """Turn SqlsynthErrors into one-line messages (DuckDB shows only the first line)."""
    @functools.wraps(function)
    def wrapped(*args: Any) -> Any:
        try:
            return function(*args)
        except SqlsynthError as exc:
            raise inline(exc) from None
    return wrapped


class CorpusFunctions:
    """The Python side of the corpus functions for one connection (project paths and endpoints)."""

    def __init__(self, context: Any):
        self.project_dir = Path(getattr(context, "project_dir", ".") or ".")
        self.target_dir = Path(getattr(context, "target_dir", None) or self.project_dir / "target")
        config = getattr(context, "config", None)
        self.endpoints = dict(getattr(config, "endpoints", None) or {})

    # -- text ----------------------------------------------------------------------------------------
    def html_to_text(self, html: str) -> str:
        from .html import html_to_text

        return html_to_text(html)

    def token_count(self, texts: Any, models_column: Any) -> Any:
        import pyarrow as pa

        from . import models

        texts, refs = _pylist(texts), _pylist(models_column)
        out: list[int | None] = [None] * len(texts)
        for ref in set(refs):
            if ref is None:
                continue
            rows = [i for i, r in enumerate(refs) if r == ref]
            tokenizer = models.load_tokenizer(ref, self.endpoints, self.project_dir)
            for i, n in zip(rows, models.count_tokens(tokenizer, [texts[i] for i in rows]), strict=True):
                out[i] = n
        return pa.array(out, type=pa.int32())

    def chunk_text(self, texts: Any, max_tokens: Any, overlaps: Any) -> Any:
        import pyarrow as pa

        from . import models
        from .chunking import chunk_texts

        tokenizer = models.load_tokenizer(models.DEFAULT_EMBEDDING_MODEL)
        chunks = chunk_texts(tokenizer, _pylist(texts), _pylist(max_tokens), _pylist(overlaps))
        return pa.array(chunks, type=pa.list_(pa.string()))

    # -- embeddings and retrieval --------------------------------------------------------------------
    def embed(self, texts: Any) -> Any:
        import pyarrow as pa

        from . import models

        values = _pylist(texts)
        present = [t for t in values if t is not None]
        embedder = models.load_embedder(str(models.embedding_model_dir(None)))
        vectors = iter(models.encode(embedder, present).tolist() if present else [])
        return pa.array([None if t is None else next(vectors) for t in values], type=pa.list_(pa.float32()))

    def retrieve(self, collections: Any, queries: Any, ks: Any) -> Any:
        import pyarrow as pa

        names, texts, ks = _pylist(collections), _pylist(queries), _pylist(ks)
        out: list[list[dict] | None] = [None] * len(texts)
        groups: dict[tuple[str, int], list[int]] = {}
        for i, (name, text, k) in enumerate(zip(names, texts, ks, strict=True)):
            if name is None or text is None or k is None:
                continue
            if k <= 0:
                raise CorpusError(f"retrieve: k must be > 0 (got {k})",
                                  hint="ask for at least one chunk, e.g. retrieve('docs', question, 4)")
            groups.setdefault((name, int(k)), []).append(i)
        for (name, k), rows in groups.items():
            for i, hits in zip(rows, self._search(name, [texts[i] for i in rows], k), strict=True):
                out[i] = hits
        return pa.array(out, type=pa.list_(pa.struct([("id", pa.string()), ("text", pa.string()),
                                                       ("distance", pa.float64())])))

    def _search(self, name: str, queries: list[str], k: int) -> list[list[dict]]:
        from . import models, store

        collection = store.get_collection(self.target_dir, name)
        size = collection.count()
        if size == 0:
            return [[] for _ in queries]
        identity = (collection.metadata or {}).get(store.MODEL_KEY)
        embedder = models.load_embedder(str(models.embedding_model_dir(identity)))
        unique = list(dict.fromkeys(queries))
        vectors = models.encode(embedder, unique)
        found = collection.query(query_embeddings=vectors, n_results=min(k, size),
                                 include=["documents", "distances"])
        by_query = {}
        for q, ids, docs, dists in zip(unique, found["ids"], found["documents"], found["distances"], strict=True):
            by_query[q] = [{"id": i, "text": d, "distance": float(x)} for i, d, x in zip(ids, docs, dists, strict=True)]
        return [by_query[q] for q in queries]

    # -- prompts and the context window --------------------------------------------------------------
    def trim_context(self, chunks: Any, budgets: Any, models_column: Any) -> Any:
        import pyarrow as pa

        from . import models

        rows, budgets, refs = _pylist(chunks), _pylist(budgets), _pylist(models_column)
        tokenizers = {ref: models.load_tokenizer(ref, self.endpoints, self.project_dir)
                      for ref in set(refs) if ref is not None}
        out: list[dict | None] = []
        for row, budget, ref in zip(rows, budgets, refs, strict=True):
            if row is None or budget is None or ref is None:
                out.append(None)
                continue
            ordered = sorted((c for c in row if c is not None and c.get("text") is not None),
                             key=lambda c: (c["distance"] is None, c["distance"] or 0.0))
            counts = models.count_tokens(tokenizers[ref], [c["text"] for c in ordered])
            kept, used = [], 0
            for chunk, n in zip(ordered, counts, strict=True):
                cost = n + (SEPARATOR_TOKENS if kept else 0)
                if used + cost > budget:
                    break  # everything from here on is less similar: dropped
                kept.append(chunk)
                used += cost
            out.append({"chunks": kept, "dropped": len(row) - len(kept), "tokens": used})
        chunk_type = pa.struct([("id", pa.string()), ("text", pa.string()), ("distance", pa.float64())])
        return pa.array(out, type=pa.struct([("chunks", pa.list_(chunk_type)), ("dropped", pa.int32()),
                                             ("tokens", pa.int32())]))

    def context_window(self, endpoint: str) -> int:
        from . import models

        return models.context_window_of(endpoint, self.endpoints)

    # -- documents -----------------------------------------------------------------------------------
    def read_documents(self, pattern: str) -> list[dict]:
        files = self._document_files(pattern)
        return [self._document(path) for path in files]

    def _document_files(self, pattern: str) -> list[Path]:
        base = Path(pattern).expanduser()
        root = base if base.is_absolute() else self.project_dir / base
        if root.is_dir():
            candidates = sorted(p for p in root.rglob("*") if p.is_file())
        elif any(ch in pattern for ch in "*?["):
            anchor = Path(root.anchor) if root.is_absolute() else self.project_dir
            relative = str(root.relative_to(anchor)) if root.is_absolute() else pattern
            candidates = sorted(p for p in anchor.glob(relative) if p.is_file())
        else:
            candidates = [root] if root.is_file() else []
        files = [p for p in candidates if p.suffix.lower() in DOCUMENT_FORMATS
                 and not any(part.startswith(".") for part in p.relative_to(p.anchor).parts)]
        if not files:
            raise CorpusError(f"read_documents: no .md, .txt or .html files match '{pattern}' (relative to "
                              f"{self.project_dir})",
                              hint="an empty corpus: check the path; a folder is read recursively, or use a "
                                   "glob like 'docs/**/*.md'")
        return files

    def _document(self, path: Path) -> dict:
        from .html import html_to_text

        try:
            raw = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"read_documents: {path} is not UTF-8 text (byte {exc.start})",
                              hint="convert the file to UTF-8") from None
        kind = DOCUMENT_FORMATS[path.suffix.lower()]
        title = None
        if kind == "html":
            title = _html_title(raw)
            text = html_to_text(raw)
        else:
            text = raw.strip()
            if kind == "markdown":
                text = _strip_front_matter(text)
                title = next((line.lstrip("#").strip() for line in text.splitlines()
                              if line.startswith("# ")), None)
        try:
            shown = path.relative_to(self.project_dir).as_posix()
        except ValueError:
            shown = str(path)
        return {"path": shown, "format": kind, "title": title or path.stem.replace("_", " ").replace("-", " "),
                "text": text}


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4:].lstrip("\n")
    return text


def _html_title(raw: str) -> str | None:
    import re

    from .html import html_to_text

    for tag in ("title", "h1"):
        match = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", raw, re.IGNORECASE | re.DOTALL)
        if match:
            title = html_to_text(match.group(1))
            if title:
                return title
    return None


# name, parameter types, return type, DuckDB function type (arrow: pyarrow arrays, up to 2,048 rows a call)
SIGNATURES = (
    ("html_to_text", ["VARCHAR"], "VARCHAR", "native"),
    ("token_count", ["VARCHAR", "VARCHAR"], "INTEGER", "arrow"),
    ("chunk_text", ["VARCHAR", "INTEGER", "INTEGER"], "VARCHAR[]", "arrow"),
    ("embed", ["VARCHAR"], "FLOAT[]", "arrow"),
    ("retrieve", ["VARCHAR", "VARCHAR", "INTEGER"], CHUNKS, "arrow"),
    ("trim_context", [CHUNKS, "INTEGER", "VARCHAR"], TRIMMED, "arrow"),
    ("context_window", ["VARCHAR"], "INTEGER", "native"),
    ("read_documents", ["VARCHAR"], f"{DOCUMENT}[]", "native"),
)
# single-machine in this release: the vector store lives in target/ on the machine that built it
SINGLE_MACHINE = ("retrieve",)


def corpus_function_specs(context: Any) -> list[Any]:
    """The corpus functions as engine-neutral UdfSpecs (what a Spark session registers)."""
    from ..python_udfs import UdfSpec

    functions = CorpusFunctions(context)
    return [UdfSpec(name=name, function=_guard(getattr(functions, name)), parameters=tuple(parameters),
                    returns=returns, vectorized=kind == "arrow", path="<sqlsynth>/corpus/sql_functions.py")
            for name, parameters, returns, kind in SIGNATURES if name not in SINGLE_MACHINE]


def register_corpus_functions(connection: Any, context: Any) -> CorpusFunctions:
    """Register the corpus functions on one DuckDB connection (cursors of it see them too)."""
    import duckdb

    t = duckdb.sqltype
    functions = CorpusFunctions(context)
    taken = {row[0] for row in connection.execute(
        "select function_name from duckdb_functions() where function_type = 'scalar' and function_name in "
        f"({', '.join('?' for _ in SIGNATURES)})", [s[0] for s in SIGNATURES]).fetchall()}
    for name, parameters, returns, kind in SIGNATURES:
        if name in taken:  # a project's own udfs/ function of that name wins
            continue
        connection.create_function(name, _guard(getattr(functions, name)), [t(p) for p in parameters],
                                   t(returns), type=kind)
    return functions
