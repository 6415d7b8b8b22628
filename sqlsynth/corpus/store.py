"""The embedded Chroma store of a project: ``<target>/chroma``, one collection per vector_index model.

Embeddings are always computed by sqlsynth (sentence-transformers) and passed to Chroma explicitly:
collections are created with ``embedding_function=None`` so Chroma's own default (which downloads a
model) is never used. Telemetry is off. Distances are cosine distances (1 - cosine similarity).
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from .errors import CorpusError

STORE_DIR = "chroma"
MODEL_KEY = "sqlsynth_embedding_model"
HASH_KEY = "sqlsynth_hash"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_lock = threading.Lock()


def store_path(target_dir: Path) -> Path:
    return Path(target_dir) / STORE_DIR


def check_collection_name(name: str, path: str | None = None) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise CorpusError(f"'{name}' is not a valid collection name", path=path,
                          hint="3-512 characters: letters, digits, '.', '_' or '-', starting and ending "
                               "with a letter or digit")
    return name


@lru_cache(maxsize=8)
def _client(path: str) -> Any:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as exc:
        raise CorpusError(f"the vector index needs chromadb ({exc})", hint="pip install 'sqlsynth[rag]'") from None
    Path(path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def client(target_dir: Path) -> Any:
    with _lock:
        return _client(str(store_path(target_dir).resolve()))


def collection_names(target_dir: Path) -> list[str]:
    if not store_path(target_dir).is_dir():
        return []
    return sorted(c.name for c in client(target_dir).list_collections())


def get_collection(target_dir: Path, name: str) -> Any:
    """An existing collection, or a CorpusError naming the known ones (one line: raised in UDFs)."""
    known = collection_names(target_dir)
    if name not in known:
        suggestion = did_you_mean(name, known)
        listing = f"known collections: {', '.join(known)}" if known else "no collection has been built yet"
        raise CorpusError(f"collection '{name}' does not exist ({listing})",
                          path=str(store_path(target_dir)),
                          hint=(suggestion + "; " if suggestion else "")
                          + "build the vector_index model that defines it first (sqlsynth run -s <model>)")
    return client(target_dir).get_collection(name)


def create_collection(target_dir: Path, name: str, metadata: dict[str, Any]) -> Any:
    return client(target_dir).create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata=metadata)


def drop_collection(target_dir: Path, name: str) -> None:
    if name in collection_names(target_dir):
        client(target_dir).delete_collection(name)


def existing_hashes(collection: Any, page: int = 5000) -> dict[str, str]:
    """id → content hash of everything in the collection (paged)."""
    out: dict[str, str] = {}
    offset = 0
    while True:
        got = collection.get(include=["metadatas"], limit=page, offset=offset)
        for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            out[id_] = (meta or {}).get(HASH_KEY, "")
        if len(got["ids"]) < page:
            return out
        offset += page


def max_batch(target_dir: Path) -> int:
    try:
        return int(client(target_dir).get_max_batch_size())
    except Exception:
        return 5000
