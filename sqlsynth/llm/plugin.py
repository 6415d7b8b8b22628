"""ai_query as a sqlsynth plugin (see sqlsynth.extensions): the compile-time rewrite, the UDF on
every connection, the `cache` and `plan` commands, Ctrl-C cancellation and per-run usage.

The hook functions import their modules on first call, so loading the registry (which the CLI does
for `sqlsynth --help`) stays cheap.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .commands import COMMANDS


def rewrite_ai_query(tree: Any, context: Any) -> Any:
    from .transform import rewrite_ai_query as rewrite

    return rewrite(tree, context)


def provide_ai_query(connection: Any, context: Any) -> None:
    from .ai_query_udf import provider

    provider(connection, context)


def batch_first(ctx: Any) -> Any:
    """Around a model's build: with a `batch: true` endpoint, its requests go as one provider batch first."""
    if not any(endpoint.batch for endpoint in ctx.db.project.config.endpoints.values()):
        return contextlib.nullcontext()
    from .batch_prepass import batch_first as prepare

    return prepare(ctx)


def cancel_batches() -> None:
    from .batch import cancel_all

    cancel_all()


def reset_usage() -> None:
    from .usage import reset_usage as reset

    reset()  # counters and max_calls budgets are per command


def finish_progress() -> None:
    from .usage import finish_progress as finish

    finish()


def usage_summary() -> dict[str, Any]:
    from .usage import usage_summary as summary

    return summary()


def node_row_errors(node: str) -> tuple[int, int]:
    from .usage import node_row_errors as errors

    return errors(node)


def register(registry: Any) -> None:
    registry.sql_transforms.append(rewrite_ai_query)
    registry.function_providers.append(provide_ai_query)
    registry.build_preparers.append(batch_first)
    registry.commands.extend(COMMANDS)
    registry.interrupt_handlers.append(cancel_batches)
    registry.run_started.append(reset_usage)
    registry.run_finished.append(finish_progress)
    registry.run_summaries["usage"] = usage_summary
    registry.row_errors.append(node_row_errors)
