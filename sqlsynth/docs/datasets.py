"""Statistics of the exported datasets: what a fine-tuning run will be fed.

Chat files (one ``{"messages": [...]}`` per line) get conversations, turns, turn lengths per role,
token counts, duplicates and truncated answers (assistant turns whose LLM call stopped at max_tokens,
from the ``sqlsynth.cache`` rows with finish_reason 'length'). Other exports (instruction JSONL,
Parquet, CSV) get rows, columns, duplicate rows and the length of each text column.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TRUNCATED_SQL = "select response from sqlsynth.cache where finish_reason = 'length'"


def spread(values: list[int]) -> dict[str, float] | None:
    """min / mean / median / p95 / max of a list of counts."""
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
            "median": statistics.median(ordered), "p95": p95, "max": ordered[-1], "total": sum(ordered)}


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def truncated_texts(con: Any) -> set[str]:
    """Every text an LLM answer cut at max_tokens held (structured answers: each string field)."""
    if con is None:
        return set()
    try:
        rows = con.execute(TRUNCATED_SQL).fetchall()
    except Exception:  # no ai_query ever ran: no cache table
        return set()
    texts: set[str] = set()
    for (response,) in rows:
        try:
            texts.update(_strings_in(json.loads(response)))
        except (TypeError, ValueError):
            texts.add(str(response).strip())
    texts.discard("")
    return texts


def _read_lines(path: Path) -> tuple[list[Any], int]:
    records, bad = [], 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    bad += 1
    return records, bad


def is_chat(records: list[Any]) -> bool:
    return bool(records) and all(isinstance(r, dict) and isinstance(r.get("messages"), list) for r in records)


def chat_stats(records: list[dict], count_tokens: Callable[[str], int], truncated: set[str]) -> dict[str, Any]:
    """Conversations, turns, per-role lengths and tokens, duplicates, truncated answers."""
    roles: dict[str, dict[str, list[int]]] = {}
    turns, conversation_tokens = [], []
    answers, questions, conversations = [], [], []
    for record in records:
        messages = [m for m in record["messages"] if isinstance(m, dict)]
        turns.append(len(messages))
        total = 0
        for message in messages:
            content = str(message.get("content") or "")
            tokens = count_tokens(content)
            total += tokens
            role = roles.setdefault(str(message.get("role")), {"chars": [], "tokens": []})
            role["chars"].append(len(content))
            role["tokens"].append(tokens)
            (answers if message.get("role") == "assistant" else questions if message.get("role") == "user"
             else []).append(content.strip())
        conversation_tokens.append(total)
        conversations.append(json.dumps(messages, sort_keys=True))
    return {
        "kind": "chat", "conversations": len(records), "turns": spread(turns),
        "roles": {name: {"turns": len(v["chars"]), "chars": spread(v["chars"]), "tokens": spread(v["tokens"])}
                  for name, v in sorted(roles.items())},
        "tokens_per_conversation": spread(conversation_tokens),
        "duplicate_conversations": _duplicates(conversations),
        "duplicate_questions": _duplicates(questions),
        "empty_answers": sum(1 for a in answers if not a),
        "truncated_answers": sum(1 for a in answers if a and a in truncated),
    }


def _duplicates(items: list[str]) -> int:
    """Items beyond the first copy of each (what deduplication would remove)."""
    return sum(n - 1 for n in Counter(items).values() if n > 1)


def table_stats(reader: str) -> dict[str, Any]:
    """Rows, columns, duplicate rows and text lengths of any file DuckDB reads."""
    import duckdb

    local = duckdb.connect(":memory:")
    try:
        described = local.execute(f"describe select * from {reader}").fetchall()
        rows = local.execute(f"select count(*) from {reader}").fetchone()[0]
        distinct = local.execute(f"select count(*) from (select distinct * from {reader})").fetchone()[0]
        text_columns = [name for name, kind, *_ in described if kind == "VARCHAR"]
        lengths = {}
        for name in text_columns:
            column = '"' + name.replace('"', '""') + '"'
            values = [r[0] for r in local.execute(f"select length({column}) from {reader} "
                                                  f"where {column} is not null").fetchall()]
            lengths[name] = spread(values)
    finally:
        local.close()
    return {"kind": "table", "rows": rows, "columns": [{"name": n, "type": k} for n, k, *_ in described],
            "duplicate_rows": rows - distinct, "text_lengths": lengths}


def _reader(path: Path) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return f"read_json({literal}, format = 'newline_delimited')"
    if suffix == ".csv":
        return f"read_csv({literal}, header = true)"
    return f"read_parquet({literal})"


def dataset_stats(path: Path, count_tokens: Callable[[str], int], truncated: set[str]) -> dict[str, Any]:
    """Statistics of one exported file (a missing or unreadable file says so instead)."""
    if not path.is_file():
        return {"kind": "missing", "error": "file not found: build the model to write it"}
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            records, bad = _read_lines(path)
            if is_chat(records):
                return {**chat_stats(records, count_tokens, truncated), "unreadable_lines": bad,
                        "bytes": path.stat().st_size}
        return {**table_stats(_reader(path)), "bytes": path.stat().st_size}
    except (OSError, UnicodeDecodeError) as exc:
        return {"kind": "missing", "error": f"cannot read: {exc}"}
    except Exception as exc:  # DuckDB cannot parse the file: shown on the page, the site still builds
        return {"kind": "missing", "error": f"cannot read: {str(exc).splitlines()[0]}"}
