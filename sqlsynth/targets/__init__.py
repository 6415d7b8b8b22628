"""Where a project runs: project.yml `targets:` (name → connection) and the `--target` choice.

The duckdb target is today's embedded engine and the default when `targets:` is absent. Spark
(local[N] or Spark Connect) and Databricks (Databricks Connect) run the same models elsewhere.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TARGET = "duckdb"
SPARK_EXTRA = "pip install 'sqlsynth[spark]'"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DuckDBTarget(_Strict):
    type: Literal["duckdb"] = "duckdb"
    database: str | None = Field(None, description="DuckDB file; default: project.yml database:")


class SparkTarget(_Strict):
    type: Literal["spark"]
    remote: str = Field("local[2]", description="local[N] (Spark started in-process) or sc://host:port")
    token_env: str | None = Field(None, description="env var holding the Spark Connect token")
    catalog: str | None = None
    schema_: str | None = Field(None, alias="schema", description="default: each node's own schema")
    table_format: Literal["parquet", "delta", "iceberg"] = "parquet"
    spark_conf: dict[str, str] = Field(default_factory=dict, description="passed to the session as is")
    ai_query_partitions: int | None = Field(
        None, ge=1, description="P: tasks calling an endpoint at once (default: local[N] → N, else the "
                                "default parallelism); each keeps max_concurrency / P requests in flight")
    ai_spool: str | None = Field(
        None, description="folder/URI both the executors and sqlsynth reach, where tasks spool answers "
                          "(default for local[N]: target/spark/ai_spool; required for sc:// with ai_query)")

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        if not re.fullmatch(r"local(\[(\d+|\*)\])?|sc://[^\s/]+(:\d+)?(/.*)?", value):
            raise ValueError("remote must be local[N] or sc://host:port")
        return value

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _conf_strings(cls, value: Any) -> Any:
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()} \
            if isinstance(value, dict) else value


class DatabricksTarget(_Strict):
    type: Literal["databricks"]
    host: str = Field(description="workspace URL, e.g. https://adb-123.azuredatabricks.net")
    token_env: str = Field(description="env var holding the personal access token")
    cluster_id: str | None = None
    serverless: bool = False
    catalog: str | None = None
    schema_: str | None = Field(None, alias="schema")

    @field_validator("serverless")
    @classmethod
    def _compute(cls, value: bool, info: Any) -> bool:
        if value and info.data.get("cluster_id"):
            raise ValueError("give cluster_id or serverless: true, not both")
        return value


TargetConfig = Annotated[DuckDBTarget | SparkTarget | DatabricksTarget, Field(discriminator="type")]
TARGET_MODELS = {"duckdb": DuckDBTarget, "spark": SparkTarget, "databricks": DatabricksTarget}


def resolve_target(targets: dict[str, Any], default: str | None, name: str | None) -> tuple[str, Any]:
    """The (name, config) a command runs on: --target, else project.yml target:, else duckdb."""
    from ..errors import ConfigError

    chosen = name or default
    if chosen is None or (chosen == DEFAULT_TARGET and DEFAULT_TARGET not in targets):
        return DEFAULT_TARGET, DuckDBTarget()
    if chosen not in targets:
        known = sorted(set(targets) | {DEFAULT_TARGET})
        where = "--target" if name else "project.yml target:"
        raise ConfigError(f"unknown target '{chosen}' ({where})", path="project.yml",
                          hint=f"known targets: {', '.join(known)}; "
                               "add it under targets: in project.yml")
    return chosen, targets[chosen]
