"""Progress lines per node, the end-of-run summary and failing-row samples (rich)."""

from __future__ import annotations

import threading
from collections import Counter

from rich.markup import escape
from rich.table import Table

from .console import console
from .node_types import NodeType, Status

_STYLE = {Status.SUCCESS: ("OK", "green"), Status.PASS: ("PASS", "green"), Status.WARN: ("WARN", "yellow"),
          Status.FAIL: ("FAIL", "red"), Status.ERROR: ("ERROR", "red"), Status.SKIPPED: ("SKIP", "yellow")}


def _kind(node) -> str:
    if node.resource_type == NodeType.MODEL:
        return node.materialized
    return node.resource_type


class Reporter:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._lock = threading.Lock()

    def node_start(self, node) -> None:
        if self.quiet or node.resource_type != NodeType.MODEL or node.materialized == "ephemeral":
            return
        with self._lock:
            console.print(f"  [dim]…     {_kind(node):<11} {escape(node.name)}[/dim]")

    def node_done(self, index: int, total: int, node, result) -> None:
        if self.quiet:
            return
        label, colour = _STYLE.get(result.status, (result.status.upper(), "white"))
        timing = f"{result.execution_time:6.2f}s" if result.status != Status.SKIPPED else "       "
        message = result.message if result.ok or result.status == Status.SKIPPED else ""
        with self._lock:
            console.print(f"  {index:>3}/{total:<3} [{colour}]{label:<5}[/{colour}] {_kind(node):<11} "
                          f"{escape(node.name):<40} {timing}  [dim]{escape(message)}[/dim]")

    def summary(self, results, elapsed: float, usage: dict | None = None) -> None:
        counts = Counter(r.status for r in results)
        parts = [f"{_STYLE[s][0]}={counts[s]}" for s in Status if counts.get(s)]
        ok = all(r.ok for r in results)
        colour = "green" if ok else "red"
        console.print(f"\n[{colour}]Done[/{colour}] in {elapsed:.2f}s. {' '.join(parts)} TOTAL={len(results)}")
        if usage and usage["total"]["rows"]:
            console.print(llm_usage_line(usage["total"]))
        for result in results:
            if result.status in (Status.ERROR, Status.FAIL, Status.WARN):
                self._detail(result)

    def _detail(self, result) -> None:
        label, colour = _STYLE[result.status]
        console.print(f"\n[{colour}]{label}[/{colour}] {escape(result.name)}: {escape(result.message)}")
        if result.sample_rows:
            table = Table(title=f"first {len(result.sample_rows)} of {result.failures:,} failing rows",
                          title_justify="left", show_edge=False)
            for column in result.sample_columns:
                table.add_column(escape(str(column)))
            for row in result.sample_rows:
                table.add_row(*(escape(_cell(v)) for v in row))
            console.print(table)


def llm_usage_line(total: dict) -> str:
    """The end-of-run LLM line; the same figures are run_results.json's usage.total."""
    return (f"LLM: {total['calls']:,} calls, {total['cached']:,} cached, {total['shared']:,} shared, "
            f"tokens {total['prompt_tokens']:,} in / {total['completion_tokens']:,} out, "
            f"est. cost ${total['cost']:.4f}, {total['retries']:,} retries, {total['errors']:,} errors")


def _cell(value, width: int = 80) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def result_table(columns: list[str], rows: list[tuple], title: str | None = None) -> Table:
    """`sqlsynth show`: long values (LLM answers) are wrapped, not cut, up to 2,000 characters."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(escape(str(column)), overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(v, 2000)) for v in row))
    return table
