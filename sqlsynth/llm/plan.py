"""Plan before paying: run the selected models' SELECTs with ai_query in *dry-run* mode.

In dry-run mode the UDF calls nothing: it computes each row's cache key, checks the cache, counts,
estimates tokens (prompt ≈ characters/4, answer ≈ max_tokens or 256) and cost, and returns a
placeholder that matches the response format (so ``unnest(r.questions)`` downstream still runs).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_ANSWER_TOKENS = 256


@dataclass
class PlanRow:
    model: str
    endpoint: str
    rows: int = 0
    unique: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    note: str | None = None
    batch: bool = False  # the endpoint uses provider batch mode: cost at the batch price
    _keys: set = field(default_factory=set, repr=False)

    @property
    def label(self) -> str:
        """The endpoint as the plan table shows it."""
        return f"{self.endpoint} (batch price)" if self.batch else self.endpoint

    @property
    def to_call(self) -> int:
        return self.unique - self.cached

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["to_call"] = self.to_call
        return data


class Collector:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PlanRow] = {}
        self.notes: dict[str, str] = {}
        self.lock = threading.Lock()
        self.current: str | None = None   # the model being dry-run now
        self.planned: set[str] = set()    # every model in this plan

    def add(self, model: str, endpoint: str, keys: list[str], cached: set[str], prompt_tokens: list[int],
            answer_tokens: list[int], prices: tuple[float | None, float | None], batch: bool = False) -> None:
        if model != self.current and model in self.planned:
            return  # an upstream view re-evaluated inside another model: counted under its own name
        with self.lock:
            row = self.rows.setdefault((model, endpoint), PlanRow(model, endpoint))
            row.batch = batch
            row.rows += len(keys)
            for key, p_tokens, a_tokens in zip(keys, prompt_tokens, answer_tokens, strict=False):
                if key in row._keys:
                    continue
                row._keys.add(key)
                row.unique += 1
                if key in cached:
                    row.cached += 1
                else:
                    row.prompt_tokens += p_tokens
                    row.completion_tokens += a_tokens
            if prices != (None, None):
                row.cost = (row.prompt_tokens * (prices[0] or 0) + row.completion_tokens * (prices[1] or 0)) / 1000

    def result(self) -> list[PlanRow]:
        out = list(self.rows.values())
        for model, note in self.notes.items():
            if not any(r.model == model for r in out):
                out.append(PlanRow(model, "?", note=note))
        return sorted(out, key=lambda r: (r.model, r.endpoint))


_active: Collector | None = None


def active() -> Collector | None:
    return _active


def plan_queries(connection: Any, queries: list[tuple[str, str]]) -> list[PlanRow]:
    """Dry-run each (model name, compiled SQL) on a connection where ai_query is registered."""
    import duckdb

    global _active
    collector = Collector()
    _active = collector
    try:
        collector.planned = {name for name, _ in queries}
        for name, sql in queries:
            collector.current = name
            cur = connection.cursor()
            try:
                result = cur.execute(f"SELECT * FROM (\n{sql}\n) AS sqlsynth_plan")
                while result.fetchmany(10_000):
                    pass
            except duckdb.Error as exc:
                collector.notes[name] = "cannot count rows yet (build its parents first): " + \
                    str(exc).splitlines()[0][:160]
            finally:
                cur.close()
    finally:
        _active = None
    return collector.result()

