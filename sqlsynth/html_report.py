"""`sqlsynth report`: a self-contained HTML page (no scripts, inline SVG) from tables in the database.

It shows a metrics table (one row per contestant), a bar chart per numeric metric, the training loss
curve from a trainer's ``training_summary.json``, and side-by-side example answers. The metrics are
also embedded as JSON so that a check can compare the page with the table exactly.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SqlsynthError
from .svg_charts import bar_chart, line_chart

DEFAULT_METRICS = "eval_metrics"

@dataclass
class ReportInputs:
    title: str
    metrics: tuple[list[str], list[tuple]]
    examples: tuple[list[str], list[tuple]] | None
    training_summary: dict[str, Any] | None
    notes: list[str]


def _esc(value: Any) -> str:
    return html.escape("NULL" if value is None else str(value))


def format_number(value: Any) -> str:
    """How numbers appear in the page (the JSON block keeps the exact values)."""
    if isinstance(value, bool) or value is None:
        return _esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return _esc(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _header(name: str) -> str:
    """A column name that may wrap after its underscores (long metric names stay inside their cell)."""
    return _esc(name).replace("_", "_<wbr>")


def metrics_table(columns: list[str], rows: list[tuple]) -> str:
    head = "".join(f'<th title="{_esc(c)}">{_header(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if _is_number(v) else "txt"}">{format_number(v)}</td>' for v in row)
        + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="metrics"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def examples_table(columns: list[str], rows: list[tuple], limit: int = 12) -> str:
    """Long rows (question, contestant, answer, ...) pivoted to one column per contestant."""
    lowered = [c.lower() for c in columns]
    if not {"question", "contestant", "answer"} <= set(lowered):
        return metrics_table(columns, rows[:limit])
    qi, ci, ai = lowered.index("question"), lowered.index("contestant"), lowered.index("answer")
    contestants = list(dict.fromkeys(r[ci] for r in rows))
    by_question: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_question.setdefault(row[qi], {})[row[ci]] = row[ai]
    head = "<th>question</th>" + "".join(f"<th>{_esc(c)}</th>" for c in contestants)
    body = "".join(
        f"<tr><td class=\"q\">{_esc(q)}</td>" + "".join(f"<td>{_esc(a.get(c, ''))}</td>" for c in contestants)
        + "</tr>" for q, a in list(by_question.items())[:limit])
    return f'<table class="examples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.examples td { max-width: 320px; white-space: pre-wrap; } td.q { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 18px 28px; }
.chart-title { font-size: 13px; font-weight: 600; } .label, .value, .tick { font-size: 11px; }
.better { font-size: 11px; fill: #2e7d32; } .axis-title { font-size: 12px; fill: #444; }
.axis { stroke: #777; } .grid { stroke: #e4e4e4; } .note { color: #666; font-size: 12px; }
.scroll { overflow-x: auto; } table.metrics th { min-width: 64px; max-width: 150px; overflow-wrap: normal; }
"""


def html_page(title: str, sections: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            f'<p class="note">generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}</p>'
            f"{''.join(sections)}</body></html>\n")


def metric_charts(columns: list[str], rows: list[tuple]) -> list[str]:
    """A bar chart per numeric column, labelled by the first text column (the contestant)."""
    label_index = next((i for i, v in enumerate(rows[0]) if isinstance(v, str)), 0) if rows else 0
    labels = [str(r[label_index]) for r in rows]
    charts = []
    for i, column in enumerate(columns):
        values = [r[i] for r in rows]
        if i != label_index and values and all(_is_number(v) for v in values):
            charts.append(bar_chart(column, labels, [float(v) for v in values], [format_number(v) for v in values]))
    return charts


def training_sections(summary: dict[str, Any] | None) -> list[str]:
    if not summary:
        return []
    losses = summary.get("losses", {})
    series = {"train loss": [tuple(p) for p in losses.get("train", [])],
              "eval loss": [tuple(p) for p in losses.get("eval", [])]}
    chart = line_chart("training loss by step", {k: v for k, v in series.items() if v}, "step", "loss")
    facts = {k: summary.get(k) for k in ("input_model", "global_step", "tokens_seen", "tokens_per_s",
                                         "train_runtime_s")}
    return ["<h2>Training loss</h2>", chart, metrics_table(list(facts), [tuple(facts.values())])]


def render_html(inputs: ReportInputs) -> str:
    columns, rows = inputs.metrics
    sections = ["<h2>Metrics</h2>", metrics_table(columns, rows),
                '<h2>Metrics as charts</h2><p class="note">★ marks the best value where the metric\'s name '
                'says which way is better.</p><div class="charts">'
                + "".join(metric_charts(columns, rows)) + "</div>"]
    sections += training_sections(inputs.training_summary)
    if inputs.examples:
        sections.append("<h2>Example answers, side by side</h2>" + examples_table(*inputs.examples))
    sections += [f'<p class="note">{_esc(note)}</p>' for note in inputs.notes]
    data = json.dumps({"columns": columns, "rows": [list(r) for r in rows]}, default=str)
    sections.append(f'<script type="application/json" id="metrics-data">{html.escape(data, quote=False)}</script>')
    return html_page(inputs.title, sections)


def _read_relation(db: Any, name: str) -> tuple[list[str], list[tuple]]:
    result = db.cursor().execute(f"select * from {name}")
    return [d[0] for d in result.description], result.fetchall()


def training_summary_path(project: Any, given: Path | None) -> Path:
    """The trainer's training_summary.json: the given path (relative to the project), else the one in
    the student model folder (var student_model_dir)."""
    if given is None:
        return project.dir / project.vars.get("student_model_dir", "target/student") / "training_summary.json"
    return given if given.is_absolute() else project.dir / given


def relation_of(project: Any, db: Any, name: str) -> str | None:
    """The relation a metrics/examples name refers to, when it is in the database."""
    node = project.find(name)
    schema, alias = (node.schema, node.alias) if node else ("main", name)
    if db.relation_type(schema, alias) is None:
        return None
    return str(node.relation) if node else name


def read_training_summary(path: Path | None, notes: list[str]) -> dict[str, Any] | None:
    if path is None or not path.exists():
        if path is not None:
            notes.append(f"no training loss curve: {path} not found")
        return None
    return json.loads(path.read_text())


def build_report(project: Any, db: Any, metrics: str, examples: str | None, training_summary: Path | None,
                 out_dir: Path) -> Path:
    """Read the metrics/examples relations and the training summary; write out_dir/index.html."""
    import duckdb

    notes: list[str] = []
    summary = read_training_summary(training_summary, notes)
    node = project.find(metrics)
    try:
        metric_data = _read_relation(db, str(node.relation) if node else metrics)
    except duckdb.Error as exc:
        raise SqlsynthError(f"cannot read the metrics relation '{metrics}': {str(exc).splitlines()[0]}",
                            hint="build it first (sqlsynth build -s +<model>) or pass --metrics NAME") from None
    if not metric_data[1]:
        raise SqlsynthError(f"the metrics relation '{metrics}' is empty", hint="build the evaluation models first")
    example_data = None
    if examples:
        relation = relation_of(project, db, examples)
        if relation is None:
            notes.append(f"no example answers: relation '{examples}' not found")
        else:
            example_data = _read_relation(db, relation)
    inputs = ReportInputs(f"{project.name}: evaluation report", metric_data, example_data, summary, notes)
    return write_page(out_dir, render_html(inputs))


def write_page(out_dir: Path, page: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
