"""The one rich console every part of sqlsynth prints through (progress, tables, errors)."""

from __future__ import annotations

import os

from rich.console import Console

# Progress and logs go to stderr so `sqlsynth show`/`compile` output on stdout stays pipeable.
console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

if os.environ.get("NO_COLOR"):
    console.no_color = out.no_color = True
