"""The docs site as a sqlsynth plugin (see sqlsynth.extensions): it adds the `docs` command group."""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from .commands import COMMANDS

    registry.commands.extend(COMMANDS)
