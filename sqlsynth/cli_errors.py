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

        terminated = _interrupt_on_sigterm()
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
            sys.exit(143 if terminated else 130)
        except Exception as exc:  # a bug in sqlsynth, not a user mistake: keep it short unless asked
            import os
            if os.environ.get("SQLSYNTH_DEBUG"):  # the traceback, with secrets masked as everywhere else
                import traceback

                from .masking import mask
                sys.stderr.write(mask(traceback.format_exc()))
                sys.exit(3)
            console.print(f"[red]Internal error:[/red] {type(exc).__name__}: {exc}", markup=True)
            console.print("  set SQLSYNTH_DEBUG=1 for the traceback and report it as a bug")
            sys.exit(3)
    return wrapper


class _Terminated:
    """Set once SIGTERM arrived, so the exit code says which signal stopped the run (128 + 15)."""

    def __init__(self) -> None:
        self.received = False

    def __bool__(self) -> bool:
        return self.received


def _interrupt_on_sigterm() -> _Terminated:
    """SIGTERM (kill, a CI timeout, docker stop) stops a run the way Ctrl-C does: in-flight LLM batches
    and statements are interrupted, completed nodes kept, and the same "Interrupted" line printed."""
    import signal
    import threading

    state = _Terminated()
    if threading.current_thread() is not threading.main_thread():
        return state  # signal handlers can only be installed from the main thread (an embedding app)

    def handler(_signum, _frame) -> None:
        state.received = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    return state


def _os_hint(exc: OSError) -> str:
    import errno

    hints = {
        errno.EEXIST: "a file is in the way of a folder sqlsynth needs: move it, or pass another --target-path",
        errno.ENOTDIR: "a file is in the way of a folder sqlsynth needs: move it, or pass another --target-path",
        errno.EACCES: "make that path writable, or pass another --target-path",
        errno.EROFS: "the file system is read-only: pass a writable --target-path",
        errno.ENOSPC: "free disk space on that file system (df -h shows it) and re-run; completed nodes are kept",
    }
    return hints.get(exc.errno, "check that path and re-run")
