"""`sqlsynth docs generate`: collect, add the evaluation report when its tables exist, write the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .site import collect, write_site

EVAL_EXAMPLES = "eval_examples"


def _evaluation(project: Any, out_dir: Path) -> str | None:
    """Write the evaluation report next to the site when the metrics relation is in the database
    (the eval models may be disabled in this invocation: their tables still count)."""
    from ..database import Database
    from ..html_report import DEFAULT_METRICS, build_report, relation_of, training_summary_path

    with Database(project, read_only=True) as db:
        if relation_of(project, db, DEFAULT_METRICS) is None:
            return None
        build_report(project, db, DEFAULT_METRICS, EVAL_EXAMPLES, training_summary_path(project, None),
                     out_dir / "evaluation")
    return "evaluation/index.html"


def generate(project: Any, out_dir: Path, tokenizer: str | None = None) -> Path:
    data = collect(project, tokenizer)
    if data["database_read"]:  # a build holding the file: the site says so and leaves evaluation out
        data["evaluation"] = _evaluation(project, out_dir)
    return write_site(project, out_dir, data)
