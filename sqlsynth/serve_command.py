"""`sqlsynth serve` as a plugin command (see sqlsynth.extensions). Apart from serve.py because it loads
the project through the library API, which itself imports serve.py for `build --serve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .serve import serve_forever


def make_command() -> Any:
    import click

    from .cli_errors import handle_errors

    @click.command("serve")
    @click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Project folder (default: current directory).")
    @click.option("--target-path", default=None, help="Artifacts folder (default: target).")
    @click.option("--host", default=None, help="Address to listen on (default: serve: host:, else localhost).")
    @click.option("--port", type=click.IntRange(1, 65535), default=None,
                  help="Port (default: serve: port:, else 9494).")
    @click.pass_context
    @handle_errors
    def serve_command(ctx, project_dir, target_path, host, port):
        """Serve the built database read-only to other DuckDB clients (Quack protocol) until Ctrl-C."""
        from .api import Options, load

        root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
        project, _graph = load(Options(project_dir=root, target_path=target_path))
        serve_forever(project, port, host)

    return serve_command


def register(registry: Any) -> None:
    registry.commands.append(make_command())
