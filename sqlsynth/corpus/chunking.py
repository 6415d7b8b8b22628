"""chunk_text: split text into windows of at most ``max_tokens`` tokens, ``overlap`` tokens shared.

Tokens are counted with the embedding model's own tokenizer (the chunks are what gets embedded, and
all-MiniLM-L6-v2 reads at most 256 of them). Chunks are slices of the original text (cut at token
offsets, never mid-word), and a window ends at a paragraph or sentence boundary when one lies in its
second half, so chunks read naturally.
"""

from __future__ import annotations

from typing import Any

from .errors import CorpusError, inline

_SENTENCE_END = (".", "!", "?", ":", ";")


def check_chunk_arguments(max_tokens: int | None, overlap: int | None) -> None:
    if max_tokens is None or max_tokens <= 0:
        raise inline(CorpusError(f"chunk_text: max_tokens must be > 0 (got {max_tokens})",
                                 hint="e.g. chunk_text(body, 200, 20)"))
    if overlap is None or overlap < 0 or overlap >= max_tokens:
        raise inline(CorpusError(f"chunk_text: overlap must be >= 0 and < max_tokens (got {overlap} with "
                                 f"max_tokens {max_tokens})", hint="e.g. chunk_text(body, 200, 20)"))


def _word_start(offsets: list[tuple[int, int]], index: int) -> int:
    """Move back to the first token of the word containing token ``index``."""
    while index > 0 and offsets[index][0] == offsets[index - 1][1]:
        index -= 1
    return index


def _cut(text: str, offsets: list[tuple[int, int]], start: int, limit: int) -> int:
    """Exclusive end token of the window starting at ``start`` with at most ``limit`` tokens."""
    end = min(start + limit, len(offsets))
    if end == len(offsets):
        return end
    best = None
    for j in range(end, start + max(limit // 2, 1), -1):  # prefer a paragraph, then a sentence end
        gap = text[offsets[j - 1][1]:offsets[j][0]]
        if "\n" in gap:
            return j
        if best is None and text[offsets[j - 1][0]:offsets[j - 1][1]] in _SENTENCE_END:
            best = j
    if best is not None:
        return best
    word = _word_start(offsets, end)  # do not end inside a word
    return word if word > start else end


def _next_boundary(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int | None:
    """The first token in [start, end) that begins a sentence or paragraph (the overlap starts there)."""
    for j in range(max(start, 1), end):
        if "\n" in text[offsets[j - 1][1]:offsets[j][0]] or \
                text[offsets[j - 1][0]:offsets[j - 1][1]] in _SENTENCE_END:
            return j
    return None


def split(text: str, offsets: list[tuple[int, int]], max_tokens: int, overlap: int) -> list[str]:
    offsets = [o for o in offsets if o[1] > o[0]]
    if not offsets:
        return [text.strip()] if text.strip() else []
    if len(offsets) <= max_tokens:
        return [text.strip()]
    chunks: list[str] = []
    start = 0
    while start < len(offsets):
        end = _cut(text, offsets, start, max_tokens)
        chunks.append(text[offsets[start][0]:offsets[end - 1][1]].strip())
        if end >= len(offsets):
            break
        following = max(end - overlap, start + 1)
        boundary = _next_boundary(text, offsets, following, end)
        snapped = boundary if boundary is not None else _word_start(offsets, following)
        start = snapped if snapped > start else following
    return [c for c in chunks if c]


def chunk_texts(tokenizer: Any, texts: list[str | None], max_tokens: list[int | None],
                overlaps: list[int | None]) -> list[list[str] | None]:
    for limit, overlap in set(zip(max_tokens, overlaps, strict=True)):
        check_chunk_arguments(limit, overlap)
    present = [i for i, t in enumerate(texts) if t is not None]
    out: list[list[str] | None] = [None] * len(texts)
    if not present:
        return out
    encoded = tokenizer([texts[i] for i in present], add_special_tokens=False, return_offsets_mapping=True)
    for position, i in enumerate(present):
        offsets = [tuple(o) for o in encoded["offset_mapping"][position]]
        out[i] = split(texts[i], offsets, int(max_tokens[i]), int(overlaps[i]))
    return out
