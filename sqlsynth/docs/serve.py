"""`sqlsynth docs serve`: the generated folder over HTTP on localhost (the file also opens from disk)."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import Any


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # a request log line per click would bury the URL the user needs


def make_server(folder: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)
