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

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


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


def metrics_table(columns: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if _is_number(v) else "txt"}">{format_number(v)}</td>' for v in row)
        + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="metrics"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def bar_chart(title: str, labels: list[str], values: list[float], width: int = 420) -> str:
    """One horizontal bar per contestant, scaled to the largest absolute value."""
    bar_h, gap, left, top = 22, 8, 170, 28
    height = top + len(values) * (bar_h + gap) + 10
    peak = max((abs(v) for v in values), default=0) or 1.0
    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
             f'<text x="0" y="16" class="chart-title">{_esc(title)}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar_h + gap)
        length = (width - left - 70) * abs(value) / peak
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="label">{_esc(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + 15}" class="value">{format_number(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], width: int = 640, height: int = 260) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    left, right, top, bottom = 50, 20, 30, 30
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
             f'<text x="0" y="16" class="chart-title">{_esc(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" class="axis"/>',
             f'<text x="{left - 4}" y="{sy(y1) + 4:.1f}" text-anchor="end" class="value">{y1:.3g}</text>',
             f'<text x="{left - 4}" y="{sy(y0) + 4:.1f}" text-anchor="end" class="value">{y0:.3g}</text>',
             f'<text x="{width - right}" y="{height - 8}" text-anchor="end" class="value">step {x1:g}</text>']
    for i, (name, data) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in data)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in data if len(data) < 40 else []:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        parts.append(f'<text x="{width - right - 4}" y="{top + 14 * (i + 1)}" text-anchor="end" '
                     f'fill="{colour}" class="label">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


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
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.examples td { max-width: 320px; white-space: pre-wrap; } td.q { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; }
.chart-title { font-size: 13px; font-weight: 600; } .label, .value { font-size: 11px; }
.axis { stroke: #999; } .note { color: #666; font-size: 12px; }
.scroll { overflow-x: auto; } table.metrics th { white-space: normal; max-width: 120px; }
"""


def render_html(inputs: ReportInputs) -> str:
    columns, rows = inputs.metrics
    label_index = next((i for i, v in enumerate(rows[0]) if isinstance(v, str)), 0) if rows else 0
    labels = [str(r[label_index]) for r in rows]
    charts = []
    for i, column in enumerate(columns):
        values = [r[i] for r in rows]
        if i != label_index and values and all(_is_number(v) for v in values):
            charts.append(bar_chart(column, labels, [float(v) for v in values]))
    sections = [f"<h1>{_esc(inputs.title)}</h1>",
                f'<p class="note">generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}</p>',
                "<h2>Metrics</h2>", metrics_table(columns, rows),
                '<h2>Metrics as charts</h2><div class="charts">' + "".join(charts) + "</div>"]
    summary = inputs.training_summary
    if summary:
        losses = summary.get("losses", {})
        series = {"train loss": [tuple(p) for p in losses.get("train", [])],
                  "eval loss": [tuple(p) for p in losses.get("eval", [])]}
        sections.append("<h2>Training loss</h2>" + line_chart("loss by step", {k: v for k, v in series.items() if v}))
        facts = {k: summary.get(k) for k in ("input_model", "global_step", "tokens_seen", "tokens_per_s",
                                             "train_runtime_s")}
        sections.append(metrics_table(list(facts), [tuple(facts.values())]))
    if inputs.examples:
        sections.append("<h2>Example answers, side by side</h2>" + examples_table(*inputs.examples))
    for note in inputs.notes:
        sections.append(f'<p class="note">{_esc(note)}</p>')
    data = json.dumps({"columns": columns, "rows": [list(r) for r in rows]}, default=str)
    sections.append(f'<script type="application/json" id="metrics-data">{html.escape(data, quote=False)}</script>')
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_esc(inputs.title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>\n")


def _read_relation(db: Any, name: str) -> tuple[list[str], list[tuple]]:
    result = db.cursor().execute(f"select * from {name}")
    return [d[0] for d in result.description], result.fetchall()


def training_summary_path(project: Any, given: Path | None) -> Path:
    """The trainer's training_summary.json: the given path (relative to the project), else the one in
    the student model folder (var student_model_dir)."""
    if given is None:
        return project.dir / project.vars.get("student_model_dir", "target/student") / "training_summary.json"
    return given if given.is_absolute() else project.dir / given


def build_report(project: Any, db: Any, metrics: str, examples: str | None, training_summary: Path | None,
                 out_dir: Path) -> Path:
    """Read the metrics/examples relations and the training summary; write out_dir/index.html."""
    import duckdb

    node = project.find(metrics)
    relation = str(node.relation) if node else metrics
    try:
        metric_data = _read_relation(db, relation)
    except duckdb.Error as exc:
        raise SqlsynthError(f"cannot read the metrics relation '{metrics}': {str(exc).splitlines()[0]}",
                            hint="build it first (sqlsynth build -s +<model>) or pass --metrics NAME") from None
    if not metric_data[1]:
        raise SqlsynthError(f"the metrics relation '{metrics}' is empty", hint="build the evaluation models first")
    example_data = None
    notes = []
    if examples:
        example_node = project.find(examples)
        try:
            example_data = _read_relation(db, str(example_node.relation) if example_node else examples)
        except duckdb.Error:
            notes.append(f"no example answers: relation '{examples}' not found")
    summary = None
    if training_summary is not None:
        if training_summary.exists():
            summary = json.loads(training_summary.read_text())
        else:
            notes.append(f"no training loss curve: {training_summary} not found")
    inputs = ReportInputs(f"{project.name}: evaluation report", metric_data, example_data, summary, notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(render_html(inputs), encoding="utf-8")
    return path
