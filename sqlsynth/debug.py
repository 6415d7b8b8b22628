"""`sqlsynth debug` (dbt debug): is the project ready to run? The project file, the database (and who
holds its lock), its storage format, each endpoint (key set, server answering one cheap request, local
model present) and the optional extras. Each check is one line; nothing is built or called twice."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import PROJECT_FILE, EndpointConfig, ProjectConfig, load_project_config
from .errors import DatabaseLockedError, SqlsynthError
from .node_types import NodeType

OK, WARN, FAIL = "ok", "warn", "fail"
SERVER_TIMEOUT_S = 5.0
# extra -> the modules it installs (pyproject.toml's optional-dependencies)
EXTRAS = {
    "local": ("torch", "transformers", "accelerate", "gguf", "xgrammar"),
    "train": ("torch", "transformers", "accelerate", "peft", "tensorboard"),
    "rag": ("chromadb", "sentence_transformers"),
    "spark": ("pyspark",),
    "deepspeed": ("deepspeed",),
    "serve": ("duckdb_extension_quack", "duckdb_extension_httpfs"),
}


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def environment() -> Check:
    import duckdb

    from . import __version__
    return Check("versions", OK, f"sqlsynth {__version__}, duckdb {duckdb.__version__}, "
                                 f"python {platform.python_version()}")


def project_file(root: Path) -> tuple[Check, ProjectConfig | None]:
    """project.yml valid, and every model, test and schema file parses."""
    from .project import load_project

    try:
        config = load_project_config(root)
    except SqlsynthError as exc:
        return Check(PROJECT_FILE, FAIL, exc.format()), None
    try:
        project = load_project(root)
    except SqlsynthError as exc:  # the database and endpoints are still worth checking
        return Check("project files", FAIL, exc.format()), config
    counts = {kind: len(project.by_type(kind)) for kind in (NodeType.MODEL, NodeType.SEED, NodeType.TEST)}
    return Check(PROJECT_FILE, OK, f"valid: project '{config.name}', {counts['model']} models, "
                                   f"{counts['seed']} seeds, {counts['test']} tests"), config


def database(root: Path, config: ProjectConfig) -> Iterator[Check]:
    """The file opens (read-only, beside SQL clients), or who holds its lock; its storage format."""
    from .database import connect

    path = Path(config.database or f"{config.target_path}/{config.name}.duckdb").expanduser()
    path = path if path.is_absolute() else root / path
    shown = os.path.relpath(path, root) if path.is_relative_to(root) else str(path)
    if not path.exists():
        yield Check("database", OK, f"{shown} does not exist yet (the first seed/run/build creates it)")
        return
    try:
        con = connect(path, read_only=True)
    except DatabaseLockedError as exc:
        yield Check("database", FAIL, f"{shown}: {exc.message}")
        return
    except SqlsynthError as exc:
        yield Check("database", FAIL, exc.format())
        return
    try:
        rows = con.execute("select tags['storage_version'] from duckdb_databases() "
                           "where database_name = current_database()").fetchall()
    finally:
        con.close()
    written = (rows[0][0] or "unknown").rstrip("+") if rows else "unknown"
    yield Check("database", OK, f"{shown} opens; no other process holds its lock")
    yield Check("storage version", OK, f"written as {written}; storage_compatibility_version "
                                       f"{config.storage_compatibility_version}")


def _key_check(name: str, endpoint: EndpointConfig) -> Check | None:
    from .llm.endpoints import missing_key

    problem = missing_key(name, endpoint)
    if problem:
        return Check(f"endpoint {name}", FAIL, problem)
    return None


def _server_check(name: str, endpoint: EndpointConfig) -> Check:
    """One cheap request: the models list (no tokens are spent)."""
    import openai

    from .llm.endpoints import api_key
    from .llm.openai_backend import OPENAI_URL

    url = (endpoint.base_url or OPENAI_URL).rstrip("/")
    client = openai.OpenAI(base_url=url, api_key=api_key(name, endpoint), max_retries=0, timeout=SERVER_TIMEOUT_S)
    try:
        models = [m.id for m in client.models.list()]
    except openai.APIStatusError as exc:
        return Check(f"endpoint {name}", FAIL, f"{url} answered HTTP {exc.status_code} to GET /models")
    except openai.APIError as exc:
        return Check(f"endpoint {name}", FAIL, f"{url} is not reachable: {exc.message}")
    finally:
        client.close()
    listed = "" if not models or endpoint.model in models else f" (model '{endpoint.model}' not in its list)"
    return Check(f"endpoint {name}", WARN if listed else OK,
                 f"{url} answers, {len(models)} model(s) listed{listed}; key "
                 f"{'$' + endpoint.api_key_env + ' is set' if endpoint.api_key_env else 'not needed'}")


def _local_model_check(name: str, endpoint: EndpointConfig) -> Check:
    from .llm.bundled import BUNDLED, bundled_gguf_path

    missing = [m for m in EXTRAS["local"][:2] if not _installed(m)]
    if missing:
        return Check(f"endpoint {name}", FAIL, f"provider transformers needs {', '.join(missing)}: "
                                               "pip install -e '.[local]'")
    model = endpoint.model
    try:
        where = bundled_gguf_path(model.lower()) if model.lower() in BUNDLED else Path(model).expanduser()
    except SqlsynthError as exc:
        return Check(f"endpoint {name}", FAIL, exc.format())
    if not where.exists():
        return Check(f"endpoint {name}", FAIL, f"local model '{model}' not found at {where}")
    return Check(f"endpoint {name}", OK, f"local model '{model}' present ({where})")


def endpoint_checks(config: ProjectConfig) -> Iterator[Check]:
    from .llm.endpoints import endpoints

    for name, endpoint in sorted(endpoints(config).items()):
        if endpoint.provider == "transformers":
            yield _local_model_check(name, endpoint)
        else:
            yield _key_check(name, endpoint) or _server_check(name, endpoint)


def extras() -> Iterator[Check]:
    for extra, modules in EXTRAS.items():
        missing = [m for m in modules if not _installed(m)]
        if not missing:
            yield Check(f"extra [{extra}]", OK, "installed")
        else:
            yield Check(f"extra [{extra}]", WARN, f"not installed (missing {', '.join(missing)}); "
                                                 f"pip install -e '.[{extra}]' if you need it")


def run_checks(root: Path) -> list[Check]:
    checks = [environment()]
    project, config = project_file(root)
    checks.append(project)
    if config is not None:
        checks += list(database(root, config))
        checks += list(endpoint_checks(config))
    checks += list(extras())
    return checks
