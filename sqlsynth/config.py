"""project.yml → validated pydantic models (unknown keys are errors, ${ENV} is interpolated)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, did_you_mean
from .targets import TARGET_MODELS, TargetConfig
from .yamlfile import LineDict, LineList, line_of, load_yaml

PROJECT_FILE = "project.yml"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EndpointConfig(Strict):
    """One named LLM endpoint (README "ai_query: LLM calls from SQL", section Endpoints)."""

    provider: Literal["openai", "transformers"] = Field(
        description="openai: any OpenAI-compatible HTTP server; transformers: in-process model")
    model: str = Field(description="model name on the server, or (transformers) a model dir / bundled name")
    base_url: str | None = Field(None, description="server URL, e.g. http://localhost:8000/v1")
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    max_concurrency: int = Field(32, ge=1, description="requests in flight per endpoint, per process")
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_base_s: float = Field(0.5, gt=0, description="first retry delay; doubles per attempt, with jitter")
    retry_max_s: float = Field(8.0, gt=0, description="longest delay between two retries (as the openai client)")
    invalid_retries: int = Field(2, ge=0, description="re-asks when an answer does not match responseFormat")
    max_calls: int | None = Field(None, ge=0, description="budget: refuse a run needing more uncached calls")
    price_per_1k_input_tokens: float | None = Field(None, ge=0)
    price_per_1k_output_tokens: float | None = Field(None, ge=0)
    context_window: int | None = Field(None, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict, description="default modelParameters")
    batch_size: int | None = Field(None, ge=1, description="transformers: prompts per generate() call")
    device: str | None = Field(None, description="transformers: cpu, cuda, mps (default: best available)")
    batch: bool = Field(False, description="openai: send a model's uncached requests as one provider batch "
                                           "(/v1/files + /v1/batches), at the batch price")
    batch_price_factor: float = Field(0.5, gt=0, description="batch price over the token prices (OpenAI: half)")
    batch_poll_s: float = Field(30.0, gt=0, description="seconds between two looks at a running batch")
    native: bool = Field(False, description="databricks target: Databricks' own ai_query on the Model Serving "
                                            "endpoint named model: (not staged, not cached by sqlsynth)")

    @field_validator("batch")
    @classmethod
    def _batch_needs_a_server(cls, value: bool, info: Any) -> bool:
        if value and info.data.get("provider") != "openai":
            raise ValueError("batch: true needs provider: openai (a server with /v1/batches)")
        return value


# Oldest DuckDB release whose clients must read the database file: 1.4 is the long-term-support line
# that the 1.x CLI, the JDBC/ODBC drivers and DBeaver's bundled driver read (1.5 reads it too).
DEFAULT_STORAGE_VERSION = "v1.4.0"


class ServeConfig(Strict):
    """Live read-only access to the database for other clients (README "Live access during a build")."""

    host: str = Field("localhost", description="address the Quack server listens on (localhost: this machine only)")
    port: int = Field(9494, ge=1, le=65535, description="TCP port of the Quack server")
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                  description="environment variable holding the clients' token (default: a new "
                                              "random token per run, printed once)")
    during_runs: bool = Field(False, description="serve during every run/build, as with --serve")


class ProjectConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    version: str | None = None
    profile: str | None = None  # accepted for dbt_project.yml compatibility, unused
    config_version: int | None = Field(None, alias="config-version")
    database: str | None = Field(None, description="DuckDB file; default target/<name>.duckdb")
    target_path: str = Field("target", alias="target-path")
    threads: int = Field(4, ge=1)
    memory_limit: str | None = Field(None, pattern=r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$",
                                     description="DuckDB memory_limit, e.g. '2GB' (default: DuckDB's own)")
    storage_compatibility_version: str = Field(
        DEFAULT_STORAGE_VERSION, pattern=r"^(v\d+\.\d+\.\d+|latest)$",
        description="DuckDB storage format of a new database file; the default is readable by DuckDB 1.4/1.5 "
                    "clients (CLI, JDBC/ODBC drivers, DBeaver); 'latest' is the running DuckDB's own format")
    serve: ServeConfig = Field(default_factory=ServeConfig)
    model_paths: list[str] = Field(default_factory=lambda: ["models"], alias="model-paths")
    seed_paths: list[str] = Field(default_factory=lambda: ["seeds"], alias="seed-paths")
    macro_paths: list[str] = Field(default_factory=lambda: ["macros"], alias="macro-paths")
    test_paths: list[str] = Field(default_factory=lambda: ["tests"], alias="test-paths")
    udf_paths: list[str] = Field(default_factory=lambda: ["udfs"], alias="udf-paths")
    clean_targets: list[str] | None = Field(None, alias="clean-targets")
    vars: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)
    seeds: dict[str, Any] = Field(default_factory=dict)
    tests: dict[str, Any] = Field(default_factory=dict)
    data_tests: dict[str, Any] = Field(default_factory=dict, alias="data-tests")
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    on_run_start: list[str] = Field(default_factory=list, alias="on-run-start",
                                    description="SQL (Jinja allowed) run before seed/run/test/build")
    on_run_end: list[str] = Field(default_factory=list, alias="on-run-end",
                                  description="SQL (Jinja allowed) run after seed/run/test/build, even on failure")
    # keys of dbt's starter dbt_project.yml for features sqlsynth lacks: accepted, with a warning
    analysis_paths: list[str] | None = Field(None, alias="analysis-paths")
    snapshot_paths: list[str] | None = Field(None, alias="snapshot-paths")
    docs_paths: list[str] | None = Field(None, alias="docs-paths")
    asset_paths: list[str] | None = Field(None, alias="asset-paths")
    packages_install_path: str | None = Field(None, alias="packages-install-path")
    require_dbt_version: Any = Field(None, alias="require-dbt-version")
    snapshots: dict[str, Any] | None = None
    quoting: dict[str, Any] | None = None
    query_comment: Any = Field(None, alias="query-comment")
    dbt_cloud: dict[str, Any] | None = Field(None, alias="dbt-cloud")
    dispatch: list[Any] | None = None
    flags: dict[str, Any] | None = None
    sources: dict[str, Any] | None = None
    exposures: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    semantic_models: dict[str, Any] | None = Field(None, alias="semantic-models")
    saved_queries: dict[str, Any] | None = Field(None, alias="saved-queries")

    @field_validator("on_run_start", "on_run_end", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
    targets: dict[str, TargetConfig] = Field(default_factory=dict, description="name → engine connection")
    target: str | None = Field(None, description="default target name (else duckdb)")

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", name):
                raise ValueError(f"endpoint name {name!r} must be letters, digits, _ or -")
        return value


def interpolate_env(data: Any, path: str, env: dict[str, str] | None = None) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string, keeping line information."""
    env = os.environ if env is None else env

    def substitute(text: str, line: int | None) -> str:
        def one(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", path=path, line=line,
                              hint=f"export {name}=... or write ${{{name}:-default}}")
        return _ENV_PATTERN.sub(one, text)

    def walk(node: Any, line: int | None) -> Any:
        if isinstance(node, LineDict):
            out = LineDict({k: walk(v, node.key_lines.get(k, node.line)) for k, v in node.items()})
            out.line, out.key_lines = node.line, node.key_lines
            return out
        if isinstance(node, list):
            out_list = LineList(walk(v, getattr(node, "line", line)) for v in node)
            out_list.line = getattr(node, "line", line)
            return out_list
        if isinstance(node, str):
            return substitute(node, line)
        return node

    return walk(data, getattr(data, "line", None))


def _describe(error: dict) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{loc}'"
    return f"{loc}: {error['msg']}" if loc else error["msg"]


def _extra_key_hint(error: dict) -> str | None:
    if error["type"] != "extra_forbidden":
        return None
    key = str(error["loc"][-1])
    model: type[BaseModel] = ProjectConfig if len(error["loc"]) == 1 else EndpointConfig
    if error["loc"][0] == "targets" and len(error["loc"]) > 3:
        model = TARGET_MODELS.get(str(error["loc"][2]), model)
    names = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    return did_you_mean(key, names) or "remove it; see the project.yml reference in README.md"


# dbt_project.yml keys accepted for compatibility but not acted on, and why
UNSUPPORTED_KEYS = {
    "analysis-paths": "analyses are not supported", "snapshot-paths": "snapshots are not supported",
    "snapshots": "snapshots are not supported", "docs-paths": "dbt docs are not supported",
    "asset-paths": "dbt docs are not supported", "packages-install-path": "packages are not supported",
    "require-dbt-version": "sqlsynth is not dbt", "quoting": "identifiers are always quoted as needed",
    "query-comment": "query comments are not added", "dbt-cloud": "dbt Cloud settings",
    "dispatch": "packages are not supported", "flags": "dbt's behaviour flags",
    "sources": "configure sources in their schema YAML", "exposures": "exposures are not supported",
    "metrics": "metrics are not supported", "semantic-models": "semantic models are not supported",
    "saved-queries": "saved queries are not supported",
}


def parse_project_config(data: Any, path: str = PROJECT_FILE) -> ProjectConfig:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with at least 'name:'", path=path,
                          hint="start the file with: name: my_project")
    _register_env_secrets(data)
    data = interpolate_env(data, path)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_describe(first), path=path, line=line_of(data, first["loc"]),
                          hint=_extra_key_hint(first)) from None
    _warn_unsupported(data, path)
    _register_endpoint_secrets(config)
    return config


def _env_names(data: Any) -> set[str]:
    if isinstance(data, dict):
        return {name for value in data.values() for name in _env_names(value)}
    if isinstance(data, list):
        return {name for value in data for name in _env_names(value)}
    return {m.group(1) for m in _ENV_PATTERN.finditer(data)} if isinstance(data, str) else set()


def _register_env_secrets(data: dict) -> None:
    """Every ${VAR} inside endpoints: or targets: (keys, tokens, URLs with credentials) is a secret."""
    from .masking import add_secret

    for section in ("endpoints", "targets"):
        for name in _env_names(data.get(section)):
            add_secret(os.environ.get(name))


def _register_endpoint_secrets(config: ProjectConfig) -> None:
    """The key named by api_key_env, credentials in base_url, key/token values in parameters."""
    from .masking import add_named_secrets, add_secret, add_url_secrets

    for endpoint in config.endpoints.values():
        if endpoint.api_key_env:
            add_secret(os.environ.get(endpoint.api_key_env))
        add_url_secrets(endpoint.base_url)
        add_named_secrets(endpoint.parameters)
    for target in config.targets.values():
        settings = target.model_dump()
        for key, value in settings.items():
            if key.endswith("_env") and isinstance(value, str):  # token_env: the variable's value
                add_secret(os.environ.get(value))
        add_named_secrets(settings)


def _warn_unsupported(data: dict, path: str) -> None:
    from .console import console

    for key, why in UNSUPPORTED_KEYS.items():
        if data.get(key) not in (None, [], {}):
            line = line_of(data, (key,))
            where = f"{path}:{line}" if line else path
            console.print(f"[yellow]warning[/yellow] {where}: '{key}' is ignored ({why})", highlight=False)


def _check_node_paths(config: ProjectConfig, project_dir: Path, data: dict) -> None:
    """A model-paths/seed-paths folder that does not exist is named here, not later as an unknown ref."""
    for key in ("model-paths", "seed-paths"):
        if key not in data:
            continue  # the default folder may be absent (a project without seeds)
        for folder in getattr(config, key.replace("-", "_")):
            if not (project_dir / folder).is_dir():
                raise ConfigError(f"{key}: folder '{folder}' does not exist in {project_dir}",
                                  path=PROJECT_FILE, line=line_of(data, (key,)),
                                  hint=f"create {folder}/, or remove it from {key}")


def load_project_config(project_dir: Path) -> ProjectConfig:
    path = project_dir / PROJECT_FILE
    if not path.exists():
        alt = project_dir / "dbt_project.yml"
        hint = ("this looks like a dbt project: copy dbt_project.yml to project.yml" if alt.exists()
                else "run 'sqlsynth init NAME' to create a project, or pass --project-dir")
        raise ConfigError(f"no {PROJECT_FILE} in {project_dir}", hint=hint)
    data = load_yaml(path, PROJECT_FILE)
    config = parse_project_config(data, PROJECT_FILE)
    _check_node_paths(config, project_dir, data)
    for endpoint in config.endpoints.values():
        # a local model directory given relative to the project (e.g. target/student)
        candidate = project_dir / endpoint.model
        if endpoint.provider == "transformers" and not Path(endpoint.model).is_absolute() and candidate.exists():
            endpoint.model = str(candidate.resolve())
    return config
