"""Shared helpers for the ai_query tests: a stub server, a project config pointing at it, and a DuckDB
connection with ai_query registered whose SQL goes through the same rewrite the engine applies."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import sqlglot

from sqlsynth.config import ProjectConfig
from sqlsynth.llm.ai_query_udf import register_ai_query
from sqlsynth.llm.transform import rewrite_ai_query
from sqlsynth.testing.openai_server import OpenAIServer, ServerConfig

FAST = {"timeout_s": 1.0, "max_retries": 4, "retry_base_s": 0.01, "retry_max_s": 0.05}


def project(url: str, **endpoint: Any) -> ProjectConfig:
    settings = {"provider": "openai", "base_url": url, "model": "stub", **FAST, **endpoint}
    return ProjectConfig(name="p", endpoints={"t": settings})


class AIConnection:
    """A connection with ai_query registered; ``sql()`` compiles like the engine, then runs."""

    def __init__(self, config: ProjectConfig, path: Path | str = ":memory:", models: dict | None = None):
        self.config, self.models = config, models or {}
        self.con = duckdb.connect(str(path))
        self.function = register_ai_query(self.con, config, self.models)

    def compile(self, sql: str, dialect: str = "duckdb", node: str | None = "m") -> str:
        tree = sqlglot.parse_one(sql, read=dialect)
        ctx = SimpleNamespace(source_dialect=dialect, node_name=node, path="models/m.sql",
                              functions=SimpleNamespace(config=self.config, pydantic_models=self.models))
        return rewrite_ai_query(tree, ctx).sql("duckdb")

    def sql(self, sql: str, dialect: str = "duckdb") -> list[tuple]:
        return self.con.execute(self.compile(sql, dialect)).fetchall()

    def close(self) -> None:
        self.function.close()
        self.con.close()


@contextmanager
def stub(**config: Any):
    with OpenAIServer(ServerConfig(**config)) as server:
        yield server


@contextmanager
def ai(server: OpenAIServer, path: Path | str = ":memory:", models: dict | None = None, **endpoint: Any):
    connection = AIConnection(project(server.url, **endpoint), path, models)
    try:
        yield connection
    finally:
        connection.close()
