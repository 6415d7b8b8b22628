"""The one rich console every part of sqlsynth prints through (progress, tables, errors)."""

from __future__ import annotations

import os

from rich.console import Console

from .masking import MaskedStream

# Progress and logs go to stderr so `sqlsynth show`/`compile` output on stdout stays pipeable. Both
# streams mask secrets (API keys, credentials in URLs, env_var(..., secret=true) values).
console = Console(file=MaskedStream("stderr"), highlight=False, soft_wrap=True)
out = Console(file=MaskedStream("stdout"), highlight=False, soft_wrap=True)

if os.environ.get("NO_COLOR"):
    console.no_color = out.no_color = True
