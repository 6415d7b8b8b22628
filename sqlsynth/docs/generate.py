"""`sqlsynth docs generate`: collect, add the evaluation report when its tables exist, write the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .site import collect, write_site

EVAL_METRICS, EVAL_EXAMPLES = "eval_metrics", "eval_examples"


def _evaluation(project: Any, out_dir: Path) -> str | None:
    """Write the evaluation report next to the site when the metrics relation is in the database
    (the eval models may be disabled in this invocation: their tables still count)."""
    from ..database import Database
    from ..html_report import build_report, training_summary_path

    if not project.database_path.exists():
        return None
    node = project.find(EVAL_METRICS)
    with Database(project, read_only=True) as db:
        if db.relation_type(node.schema if node else "main", node.alias if node else EVAL_METRICS) is None:
            return None
        build_report(project, db, EVAL_METRICS, EVAL_EXAMPLES, training_summary_path(project, None),
                     out_dir / "evaluation")
    return "evaluation/index.html"


def generate(project: Any, out_dir: Path, tokenizer: str | None = None) -> Path:
    data = collect(project, tokenizer)
    data["evaluation"] = _evaluation(project, out_dir)
    return write_site(project, out_dir, data)
