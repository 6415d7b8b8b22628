"""JSONL → validated conversations → token ids with the loss masked to assistant tokens.

Two input formats, detected per line:
  chat:  {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}
  Dolly: {"instruction": ..., "context": ..., "response": ..., "category": ...}
A Dolly record becomes one user turn (instruction, then the context) and one assistant turn.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlsynth.errors import did_you_mean
from training.errors import DatasetError

ROLES = ("system", "user", "assistant")
IGNORE = -100  # the label value PyTorch's cross-entropy skips


@dataclass
class Record:
    line: int
    messages: list[dict]
    category: str | None = None


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    line: int

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class TokenStats:
    records: int = 0
    truncated: int = 0
    dropped: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    dropped_lines: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- reading and validating

def read_records(path: str | Path) -> list[Record]:
    """Every record of a JSONL file; the first bad line raises DatasetError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("training dataset not found", path=path,
                           hint="pass the JSONL your pipeline exported, e.g. --training-dataset target/chat.jsonl")
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if text.strip():
                records.append(parse_line(text, path, number))
    if not records:
        raise DatasetError("the training dataset is empty (no JSON lines)", path=path,
                           hint="check the export step wrote rows; one JSON object per line is expected")
    return records


def parse_line(text: str, path: Path, line: int) -> Record:
    def fail(message: str, hint: str | None = None):
        raise DatasetError(message, path=path, line=line, hint=hint)

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"not valid JSON ({exc.msg} at column {exc.colno})", "write one JSON object per line (JSONL)")
    if not isinstance(obj, dict):
        fail(f"expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        return Record(line, _chat_messages(obj["messages"], fail), obj.get("category"))
    if "instruction" in obj or "response" in obj:
        return Record(line, _dolly_messages(obj, fail), obj.get("category"))
    fail(f"unknown record shape with keys {sorted(obj)}",
         'use {"messages": [...]} (chat) or {"instruction", "context", "response", "category"} (Dolly)')


def _chat_messages(messages, fail) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        fail('"messages" must be a non-empty list of {"role", "content"} objects')
    clean = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            fail(f'message {i} must be an object with "role" and "content"')
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            suggestion = did_you_mean(str(role).strip(), ROLES) or f"use one of {', '.join(ROLES)}"
            fail(f"message {i} has role {role!r}, which is not one of {', '.join(ROLES)}", suggestion)
        if not isinstance(content, str):
            fail(f'message {i} ("{role}") content must be a string, got {type(content).__name__}')
        clean.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in clean):
        fail("the conversation has no non-empty assistant turn, so there is nothing to learn from it",
             "every record needs at least one assistant message with content")
    return clean


def _dolly_messages(obj: dict, fail) -> list[dict]:
    for key in ("instruction", "response"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            fail(f'Dolly record needs a non-empty string "{key}"',
                 'fields: "instruction", "response", optional "context" and "category"')
    context = obj.get("context") or ""
    if not isinstance(context, str):
        fail(f'"context" must be a string, got {type(context).__name__}')
    prompt = obj["instruction"] if not context.strip() else f"{obj['instruction']}\n\nContext:\n{context}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": obj["response"]}]


# ---------------------------------------------------------------- chat template and the loss mask

def template_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, is_assistant) pieces.

    Each assistant turn's span is found by rendering the conversation up to it twice: with the
    generation prompt (where the answer starts) and including it (where it ends, end-of-turn token
    included so the model learns to stop). Pieces are tokenized separately, exactly as at inference
    time, where the prompt ends at the generation prompt.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise DatasetError("the model's tokenizer has no chat template",
                           hint="fine-tune an instruct/chat model (its tokenizer_config.json carries the template)")
    render = tokenizer.apply_chat_template
    segments, done = [], ""
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start = render(messages[:i], tokenize=False, add_generation_prompt=True)
        end = render(messages[: i + 1], tokenize=False)
        if not (start.startswith(done) and end.startswith(start)):
            raise DatasetError("the chat template does not render conversations prefix by prefix, "
                               "so assistant tokens cannot be located", hint="use a model with a ChatML-style template")
        segments += [(start[len(done):], False), (end[len(start):], True)]
        done = end
    full = render(messages, tokenize=False)
    if full.startswith(done) and len(full) > len(done):
        segments.append((full[len(done):], False))
    return [(text, trained) for text, trained in segments if text]


def tokenize_conversation(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """input_ids and labels: labels copy the ids on assistant tokens and are IGNORE elsewhere."""
    ids, labels = [], []
    for text, trained in template_segments(tokenizer, messages):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    return ids, labels


def build_examples(records: list[Record], tokenizer, max_seq_len: int, overlong: str) -> tuple[list[Example], TokenStats]:
    """Tokenize records, truncating or dropping the ones over max_seq_len; counts go into TokenStats."""
    stats, examples = TokenStats(), []
    for rec in records:
        ids, labels = tokenize_conversation(tokenizer, rec.messages)
        if len(ids) > max_seq_len:
            if overlong == "drop":
                stats.dropped += 1
                stats.dropped_lines.append(rec.line)
                continue
            ids, labels = ids[:max_seq_len], labels[:max_seq_len]
            stats.truncated += 1
        example = Example(ids, labels, rec.line)
        if example.trained_tokens == 0:  # the prompt alone filled the window
            stats.dropped += 1
            stats.dropped_lines.append(rec.line)
            continue
        examples.append(example)
        stats.records += 1
        stats.tokens += len(ids)
        stats.trained_tokens += example.trained_tokens
    return examples, stats


# ---------------------------------------------------------------- split, prompts, batching

def split_records(records: list[Record], test_size: float, seed: int) -> tuple[list[Record], list[Record]]:
    """A seeded shuffle split; test_size < 1 is a fraction, >= 1 a count. Both sides keep >= 1 record."""
    if test_size <= 0 or len(records) < 2:
        return list(records), []
    n_eval = int(test_size) if test_size >= 1 else round(len(records) * test_size)
    n_eval = min(max(n_eval, 1), len(records) - 1)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    eval_idx = set(order[:n_eval])
    train = [r for i, r in enumerate(records) if i not in eval_idx]
    held = [r for i, r in enumerate(records) if i in eval_idx]
    return train, held


def sample_prompts(records: list[Record], k: int) -> list[tuple[list[dict], str]]:
    """(prompt messages, reference answer) for the first k records: the context up to the last assistant turn."""
    prompts = []
    for rec in records[:k]:
        last = max(i for i, m in enumerate(rec.messages) if m["role"] == "assistant")
        prompts.append((rec.messages[:last], rec.messages[last]["content"]))
    return prompts


class ExampleDataset:
    """A map-style dataset over Examples, in the dict form the Trainer feeds to the collator."""

    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        return {"input_ids": ex.input_ids, "labels": ex.labels}


class PadCollator:
    """Right-pads a batch to its longest sequence; padding is masked out of attention and loss."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        width = max(len(item["input_ids"]) for item in batch)
        ids, labels, mask = [], [], []
        for item in batch:
            pad = width - len(item["input_ids"])
            ids.append(item["input_ids"] + [self.pad_token_id] * pad)
            labels.append(item["labels"] + [IGNORE] * pad)
            mask.append([1] * len(item["input_ids"]) + [0] * pad)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}
