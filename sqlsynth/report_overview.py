"""`sqlsynth report` on any project: the evaluation report when the metrics relation exists, else
what the project has built — relations with their last run and rows, LLM usage per model, exported
datasets, the loss curve."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .docs.catalog import Artifacts, DatabaseFacts, describe_node
from .docs.datasets import dataset_stats, truncated_texts
from .docs.tokens import token_counter
from .html_report import (
    DEFAULT_METRICS,
    build_report,
    format_number,
    html_page,
    metrics_table,
    read_training_summary,
    relation_of,
    training_sections,
    write_page,
)
from .node_types import NodeType
from .svg_charts import bar_chart

NO_EVAL_NOTE = ("No evaluation tables yet (no eval_metrics relation): this page shows what the project has "
                "built. Build a relation with one row per contestant and numeric metric columns "
                "(e.g. the bank project's `make eval`) for the evaluation report, or pass --metrics NAME.")


def _relations(described: list[dict[str, Any]]) -> str:
    def known(value: Any) -> Any:
        return "–" if value is None else value

    rows = [(d["name"], d["type"], d["materialized"] or "", (d["run"] or {}).get("status") or "not run",
             known(d["rows"] if d["rows"] is not None else (d["run"] or {}).get("rows_affected")),
             known((d["run"] or {}).get("execution_time"))) for d in described]
    return metrics_table(["relation", "type", "materialized", "last run", "rows", "time_s"], rows)


def _llm_usage(described: list[dict[str, Any]]) -> list[str]:
    used = [d for d in described if d["llm_calls"]]
    if not used:
        return []
    keys = ("calls", "errors", "truncated", "prompt_tokens", "completion_tokens", "cost")
    rows = [(d["name"], *(d["llm_calls"][k] for k in keys)) for d in used]
    names = [d["name"] for d in used]
    charts = [bar_chart(f"{key} per model", names, [float(d["llm_calls"][key]) for d in used],
                        [format_number(d["llm_calls"][key]) for d in used], judge=False)
              for key in ("completion_tokens", "cost")]
    return ["<h2>LLM calls per model (all runs, sqlsynth.calls)</h2>", metrics_table(["model", *keys], rows),
            '<div class="charts">' + "".join(charts) + "</div>"]


def _datasets(project: Any, described: list[dict[str, Any]], con: Any) -> list[str]:
    exports = [d for d in described if d["export_file"]]
    if not exports:
        return []
    count_tokens, label = token_counter(None)
    truncated = truncated_texts(con)
    rows = []
    for d in exports:
        path = Path(d["export_file"])
        stats = dataset_stats(path if path.is_absolute() else project.dir / path, count_tokens, truncated)
        size = stats.get("conversations", stats.get("rows"))
        duplicates = stats.get("duplicate_conversations", stats.get("duplicate_rows"))
        tokens = (stats.get("tokens_per_conversation") or {}).get("total")
        rows.append((d["export_file"], stats["kind"], size, duplicates, stats.get("truncated_answers"), tokens,
                     stats.get("error", "")))
    return ["<h2>Exported datasets</h2>",
            metrics_table(["file", "kind", "conversations_or_rows", "duplicates", "truncated_answers",
                           "tokens", "problem"], rows),
            f'<p class="note">{label}; `sqlsynth docs generate` shows turn lengths per role.</p>']


def any_report(project: Any, db: Any, metrics: str | None, examples: str | None, training_summary: Path | None,
               out_dir: Path) -> Path:
    """The evaluation report of ``metrics`` (default eval_metrics); with no metrics named and no
    eval_metrics built, the overview."""
    if metrics is not None or relation_of(project, db, DEFAULT_METRICS) is not None:
        return build_report(project, db, metrics or DEFAULT_METRICS, examples, training_summary, out_dir)
    notes: list[str] = []
    summary = read_training_summary(training_summary, notes)
    return write_page(out_dir, overview_page(project, db, summary, notes))


def overview_page(project: Any, db: Any, summary: dict[str, Any] | None, notes: list[str]) -> str:
    facts = DatabaseFacts(db.con, project)
    artifacts = Artifacts.read(project.target_dir)
    described = [describe_node(n, project, facts, artifacts) for n in project.nodes.values()
                 if n.resource_type in (NodeType.SEED, NodeType.MODEL, NodeType.SOURCE)]
    sections = [f'<p class="note">{NO_EVAL_NOTE}</p>', "<h2>Relations</h2>", _relations(described)]
    sections += _llm_usage(described) + _datasets(project, described, db.con) + training_sections(summary)
    sections += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    return html_page(f"{project.name}: project report", sections)
