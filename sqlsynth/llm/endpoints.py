"""Endpoint names → backends. One backend per (name, config) per process, so the semaphore and rate
limits of an endpoint are shared by every query and connection.

``default`` always exists: the bundled local model unless project.yml configures its own ``default``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..config import EndpointConfig, ProjectConfig
from ..errors import did_you_mean
from .errors import EndpointError

DEFAULT_NAME = "default"
DEFAULT_ENDPOINT = EndpointConfig(provider="transformers", model="smollm2-135m-instruct")
NO_KEY = "sk-no-key-required"  # local servers (vLLM, Ollama) accept any key

_lock = threading.Lock()
_backends: dict[tuple[str, str], Any] = {}


def endpoints(config: ProjectConfig | None) -> dict[str, EndpointConfig]:
    configured = dict(config.endpoints) if config else {}
    configured.setdefault(DEFAULT_NAME, DEFAULT_ENDPOINT)
    return configured


def resolve(name: str, config: ProjectConfig | None) -> EndpointConfig:
    known = endpoints(config)
    if name in known:
        return known[name]
    names = sorted(known)
    raise EndpointError(f"unknown endpoint '{name}' (known: {', '.join(names)})",
                        path="project.yml",
                        hint=did_you_mean(name, names) or f"add it under `endpoints:` in project.yml:\n"
                        f"    endpoints:\n      {name}:\n        provider: openai\n        base_url: ...\n"
                        f"        model: ...")


def get_backend(name: str, config: ProjectConfig | None) -> Any:
    """The process-wide backend for an endpoint name (created on first use)."""
    endpoint = resolve(name, config)
    key = (name, endpoint.model_dump_json())
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = _backends[key] = _create(name, endpoint)
        return backend


def _create(name: str, endpoint: EndpointConfig) -> Any:
    if endpoint.provider == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(endpoint, name, api_key(name, endpoint))
    try:
        from .local import TransformersBackend
    except ImportError as exc:
        raise EndpointError(f"endpoint '{name}' (provider: transformers) needs torch and transformers: {exc}",
                            hint="pip install 'sqlsynth[local]'  (or point the endpoint at a server: "
                            "provider: openai)") from None
    return TransformersBackend(endpoint, name)


def missing_key(name: str, endpoint: EndpointConfig) -> str | None:
    """Why an openai endpoint has no key (naming the variable, never a value); None when it has one or
    needs none. `sqlsynth plan` warns with it, `sqlsynth debug` fails with it."""
    if endpoint.provider != "openai":
        return None
    if endpoint.api_key_env:
        return None if os.environ.get(endpoint.api_key_env) else \
            f"endpoint '{name}': environment variable {endpoint.api_key_env} is not set"
    if endpoint.base_url is None:
        return f"endpoint '{name}' talks to api.openai.com but names no api_key_env"
    return None


def api_key(name: str, endpoint: EndpointConfig) -> str:
    """The key from the environment; an error naming the variable (never its value) when unset."""
    if endpoint.api_key_env:
        value = os.environ.get(endpoint.api_key_env)
        if not value:
            raise EndpointError(f"endpoint '{name}': environment variable {endpoint.api_key_env} is not set",
                                path="project.yml",
                                hint=f"export {endpoint.api_key_env}=... (keys live in the environment, "
                                "never in project.yml)")
        return value
    if endpoint.base_url is None:
        raise EndpointError(f"endpoint '{name}' talks to api.openai.com but names no api_key_env",
                            path="project.yml", hint="add `api_key_env: OPENAI_API_KEY` to the endpoint")
    return NO_KEY


def identity(name: str, config: ProjectConfig | None) -> dict[str, Any]:
    """Cache identity without creating a backend (plan, stats): provider, base_url, model."""
    endpoint = resolve(name, config)
    if endpoint.provider == "openai":
        from .openai_backend import OPENAI_URL

        return {"provider": "openai", "base_url": (endpoint.base_url or OPENAI_URL).rstrip("/"),
                "model": endpoint.model}
    return {"provider": "transformers", "base_url": None, "model": endpoint.model}

