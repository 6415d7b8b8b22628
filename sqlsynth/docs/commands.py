"""CLI: `sqlsynth docs generate` and `sqlsynth docs serve` (added through the extension registry)."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_errors import handle_errors as _errors
from ..cli_options import FullSummaryGroup, parse_vars

_project_option = click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                               help="Project folder (default: current directory).")
_vars_option = click.option("--vars", "vars_", default=None, help="Vars as JSON/YAML.")
_target_path_option = click.option("--target-path", default=None, help="Artifacts folder (default: target).")


def _generate(ctx: click.Context, project_dir: Path | None, vars_: str | None, target_path: str | None,
              tokenizer: str | None) -> Path:
    from ..api import Options, load
    from .generate import generate

    root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
    project, _graph = load(Options(project_dir=root, vars=parse_vars(vars_), target_path=target_path))
    return generate(project, project.target_dir / "docs", tokenizer)


@click.group("docs", cls=FullSummaryGroup)
def docs_group() -> None:
    """A browsable site of the project: lineage graph, node details, dataset statistics, evaluation."""


@docs_group.command("generate")
@_project_option
@_vars_option
@_target_path_option
@click.option("--tokenizer", default=None,
              help="tokenizer.json or a model folder for exact token counts (default: the bundled model's, "
                   "else an estimate).")
@click.pass_context
@_errors
def generate_command(ctx, project_dir, vars_, target_path, tokenizer):
    """Write target/docs/index.html (one self-contained file: open it in any browser, no network)."""
    from ..console import console

    path = _generate(ctx, project_dir, vars_, target_path, tokenizer)
    console.print(f"Wrote {path}", highlight=False)


@docs_group.command("serve")
@_project_option
@_vars_option
@_target_path_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port (0: any free one).")
@click.option("--no-generate", is_flag=True, help="Serve the existing target/docs/ as it is.")
@click.pass_context
@_errors
def serve_command(ctx, project_dir, vars_, target_path, host, port, no_generate):
    """Generate the site (unless --no-generate) and serve target/docs/ until Ctrl-C."""
    from ..console import console
    from ..errors import SqlsynthError
    from .serve import make_server

    if no_generate:
        from ..api import Options, load

        root = project_dir or ctx.find_root().params.get("project_dir") or Path(".")
        folder = load(Options(project_dir=root, target_path=target_path))[0].target_dir / "docs"
        if not (folder / "index.html").is_file():
            raise SqlsynthError(f"{folder / 'index.html'} does not exist", hint="run `sqlsynth docs generate` first")
    else:
        folder = _generate(ctx, project_dir, vars_, target_path, None).parent
    try:
        server = make_server(folder, host, port)
    except OSError as exc:
        raise SqlsynthError(f"cannot listen on {host}:{port}: {exc.strerror}",
                            hint="pick another --port (0 = any free one)") from None
    bound_host, bound_port = server.server_address[:2]
    console.print(f"Serving {folder} at http://{bound_host}:{bound_port}/ (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [docs_group]
