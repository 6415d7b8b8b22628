"""Secrets never leave the process: every value read through a secret-bearing route is masked as ***
wherever sqlsynth prints or writes (console, target/ artifacts, compiled SQL, the call log and cache).

Secret-bearing routes: an endpoint's `api_key_env`, any ${VAR} inside `endpoints:` in project.yml,
credentials in a `base_url` (user-info, key/token query parameters), key/token/secret/password/
authorization values in an endpoint's `parameters`, and `env_var('X', secret=true)` or a variable named
DBT_ENV_SECRET_* (dbt's convention) in a model. URLs with credentials are masked by pattern as well, so
a key in a URL that an error message quotes is hidden even if sqlsynth never read it as a secret.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
SECRET_ENV_PREFIX = "DBT_ENV_SECRET_"
_MIN_LENGTH = 4  # shorter values ("1", "true") would mask ordinary text everywhere
_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|pwd|auth|credential|signature|sig$", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@'\"]+@", re.I)
_URL_SECRET_QUERY = re.compile(r"(?P<name>[?&;][\w.-]*(?:key|token|secret|password|passwd|pwd|auth|credential|"
                               r"signature|sig)[\w.-]*=)[^&\s'\"#]+", re.I)

_lock = threading.Lock()
_secrets: set[str] = set()


def add_secret(value: Any) -> None:
    """Mask this value from now on (values shorter than 4 characters cannot be masked safely)."""
    if isinstance(value, str) and len(value.strip()) >= _MIN_LENGTH:
        with _lock:
            _secrets.add(value)
            _secrets.add(value.strip())


def add_url_secrets(url: str | None) -> None:
    """The password (or a token used as user name) and the key/token query values of a URL."""
    if not url or "://" not in url:
        return
    parts = urlsplit(url)
    add_secret(parts.password or parts.username)
    for name, value in parse_qsl(parts.query):
        if _SECRET_NAME.search(name):
            add_secret(value)


def add_named_secrets(data: Any, name: str = "") -> None:
    """Every string under a key that names a secret (api_key, token, Authorization...), at any depth."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not str(key).endswith("_env"):  # api_key_env / token_env hold a variable's name
                add_named_secrets(value, str(key))
    elif isinstance(data, (list, tuple)):
        for value in data:
            add_named_secrets(value, name)
    elif isinstance(data, str) and _SECRET_NAME.search(name):
        add_secret(data.split(" ", 1)[1] if data.lower().startswith(("bearer ", "basic ")) else data)


def is_secret_env(name: str) -> bool:
    return name.startswith(SECRET_ENV_PREFIX)


def mask(text: str) -> str:
    """The text with every known secret and every credential in a URL replaced by ***."""
    if not text or not isinstance(text, str):
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    if "=" in text:
        text = _URL_SECRET_QUERY.sub(lambda m: f"{m.group('name')}{MASK}", text)
    return text


def mask_data(value: Any) -> Any:
    """mask() applied to every string (keys too) of JSON-like data."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_data(k): mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value


def contains_secret(text: str) -> bool:
    return bool(text) and mask(text) != text


class MaskedStream:
    """A text stream that masks what is written to it; the real stream is looked up on every write, so
    pytest's capture and redirect_stdout keep working."""

    def __init__(self, name: str):
        self._name = name

    @property
    def _stream(self) -> Any:
        return getattr(sys, self._name)

    def write(self, text: str) -> int:
        self._stream.write(mask(text))
        return len(text)

    def __getattr__(self, attribute: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, attribute)
