"""Turn library errors into one message and an exit code for every CLI command (never a traceback)."""

from __future__ import annotations

import functools
import sys

import click


def handle_errors(fn):
    """Library errors become one message and an exit code, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .console import console
        from .errors import SqlsynthError

        try:
            return fn(*args, **kwargs)
        except SqlsynthError as exc:
            console.print("[red]Error:[/red] ", end="")
            console.print(exc.format(), markup=False, highlight=False)
            sys.exit(exc.exit_code)
        except (SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except OSError as exc:  # the environment (a path that is a file, no permission, disk full), not a bug
            where = f"{exc.filename}: " if exc.filename else ""
            console.print("[red]Error:[/red] ", end="")
            console.print(f"{where}{exc.strerror or exc}\n  hint: {_os_hint(exc)}", markup=False, highlight=False)
            sys.exit(2)
        except KeyboardInterrupt:
            console.print("[red]Interrupted.[/red] Completed nodes are kept; re-run to continue.")
            sys.exit(130)
        except Exception as exc:  # a bug in sqlsynth, not a user mistake: keep it short unless asked
            import os
            if os.environ.get("SQLSYNTH_DEBUG"):
                raise
            console.print(f"[red]Internal error:[/red] {type(exc).__name__}: {exc}", markup=True)
            console.print("  set SQLSYNTH_DEBUG=1 for the traceback and report it as a bug")
            sys.exit(3)
    return wrapper


def _os_hint(exc: OSError) -> str:
    import errno

    hints = {
        errno.EEXIST: "a file is in the way of a folder sqlsynth needs: move it, or pass another --target-path",
        errno.ENOTDIR: "a file is in the way of a folder sqlsynth needs: move it, or pass another --target-path",
        errno.EACCES: "make that path writable, or pass another --target-path",
        errno.EROFS: "the file system is read-only: pass a writable --target-path",
        errno.ENOSPC: "free disk space and re-run; completed nodes are kept",
    }
    return hints.get(exc.errno, "check that path and re-run")
