"""`sqlsynth retry`: repeat the last seed/run/test/build for the nodes that failed or were skipped."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .api import Options
from .config import load_project_config
from .errors import ConfigError
from .node_types import Status

RETRY_STATUSES = (Status.ERROR, Status.FAIL, Status.SKIPPED)
RETRYABLE_COMMANDS = ("seed", "run", "test", "build")


def retry_options(options: Options) -> tuple[str, Options]:
    """The last command and its options (select, exclude, vars, full_refresh from run_results.json),
    narrowed to the nodes whose status was error, fail or skipped (an empty list: nothing to do)."""
    root = options.project_dir.resolve()
    target = options.target_path or load_project_config(root).target_path
    path = root / target / "run_results.json"
    if not path.exists():
        raise ConfigError("no previous run to retry", path=path.relative_to(root),
                          hint="run sqlsynth seed, run, test or build first")
    try:
        data = json.loads(path.read_text())
        command, args, results = data["command"], data.get("args", {}), data["results"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError("not a run_results.json written by sqlsynth", path=path.relative_to(root),
                          hint="run the command again instead of retrying") from None
    if command not in RETRYABLE_COMMANDS:
        raise ConfigError(f"the last command was '{command}'; retry repeats {', '.join(RETRYABLE_COMMANDS)}",
                          path=path.relative_to(root))
    failed = [r["unique_id"] for r in results if r.get("status") in RETRY_STATUSES]
    return command, replace(options, select=list(args.get("select") or []),
                            exclude=list(args.get("exclude") or []),
                            vars={**(args.get("vars") or {}), **options.vars},
                            full_refresh=bool(args.get("full_refresh")), only=failed,
                            state=Path(args["state"]) if args.get("state") else None,
                            fail_on_ai_errors=bool(args.get("fail_on_ai_errors")))
