"""Grammar-constrained decoding: xgrammar JSON-schema grammars plus a closing phase near max_tokens."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from ..bundled import LocalModelError

DEFAULT_MAX_ITEMS = 32  # added to array schemas without maxItems


def bounded_schema(schema: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """A copy of ``schema`` with maxItems / maxLength added where absent (a tiny model rambles).

    Strings get at most ~4 characters per token of budget, arrays DEFAULT_MAX_ITEMS items; bounds the
    user wrote are kept. The closing phase (``_GrammarProcessor``) is what guarantees completion.
    """
    max_length = max(16, 4 * max_new_tokens)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        free_text = not any(k in node for k in ("enum", "const", "pattern", "format"))
        if "string" in types and free_text and "maxLength" not in node:
            out["maxLength"] = max(max_length, node.get("minLength", 0))
        if "array" in types and "maxItems" not in node:
            out["maxItems"] = max(DEFAULT_MAX_ITEMS, node.get("minItems", 0))
        return out

    return walk(copy.deepcopy(schema))


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """The shortest JSON value ``schema`` accepts (near enough): sizes the closing phase's token reserve."""
    defs = schema.get("$defs", schema.get("definitions", {})) if defs is None else defs
    if depth > 8:
        return None
    if "$ref" in schema:
        return minimal_instance(defs.get(schema["$ref"].split("/")[-1], {}), defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [minimal_instance(s, defs, depth + 1) for s in schema[key]]
            return min(options, key=lambda v: len(json.dumps(v)))
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return min(schema["enum"], key=lambda v: len(json.dumps(v)))
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind == "array":
        return [minimal_instance(schema.get("items") or {}, defs, depth + 1)] * schema.get("minItems", 0)
    if kind == "object":
        props = schema.get("properties", {})
        return {k: minimal_instance(props.get(k, {}), defs, depth + 1) for k in schema.get("required", [])}
    return {"boolean": False, "null": None}.get(kind, 0)


class GrammarTools:
    """Per-model xgrammar state: tokenizer info, compiler (with its cache), the 'closer' token mask."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids: list[int]):
        try:
            import xgrammar as xgr
        except ImportError:
            raise LocalModelError("structured output on the local model needs xgrammar",
                                  hint="pip install xgrammar  (or 'sqlsynth[local]')") from None
        self.vocab_size = vocab_size
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.tokenizer = tokenizer
        self._token_masks(stop_ids)
        self._compiled: dict[str, Any] = {}

    def _token_masks(self, stop_ids: list[int]) -> None:
        """Token menus for the processor, from each token's text.

        - quote / bracket closers: tokens made only of " ] } starting with a quote / a bracket;
        - letters: their being allowed tells that a row is inside a string;
        - no_control: tokens without raw control characters. Compact JSON never needs one, and
          xgrammar 0.2.8 lets them into strings that have a maxLength/minLength (invalid JSON).
        """
        import torch

        quote, bracket = (torch.zeros(self.vocab_size, dtype=torch.bool) for _ in range(2))
        clean = torch.ones(self.vocab_size, dtype=torch.bool)
        self.letters: list[int] = []
        for token_id in range(min(len(self.tokenizer), self.vocab_size)):
            if token_id in stop_ids:
                continue
            text = self.tokenizer.decode([token_id])
            if any(ord(c) < 0x20 or c == "\x7f" for c in text):
                clean[token_id] = False
            elif text and set(text) <= set('"]}'):
                (quote if text[0] == '"' else bracket)[token_id] = True
            elif len(text) == 1 and text.isascii() and text.isalpha() and len(self.letters) < 8:
                self.letters.append(token_id)
        self.quote_closers, self.bracket_closers = pack_bitmask(quote), pack_bitmask(bracket)
        self.no_control = pack_bitmask(clean)

    def compile(self, schema: dict[str, Any], max_new_tokens: int):
        text = json.dumps(bounded_schema(schema, max_new_tokens))  # key order = generation order
        if text not in self._compiled:
            try:
                self._compiled[text] = self.compiler.compile_json_schema(text, any_whitespace=False)
            except Exception as exc:
                raise LocalModelError(f"cannot build a grammar from the response schema: {exc}",
                                      hint="check the JSON schema (responseFormat)") from None
        return self._compiled[text]

    def reserve(self, schema: dict[str, Any]) -> tuple[int, int]:
        """(typical, worst) tokens the shortest valid answer takes, in xgrammar's compact spacing.

        Typical: as the tokenizer would split it; worst: one token per byte (the model may spell a
        forced key in small pieces). Closing starts ``typical`` tokens before max_tokens; generation
        may run ``worst`` tokens past it, so a structured answer always ends as complete JSON.
        """
        shortest = json.dumps(minimal_instance(schema), separators=(", ", ": "), ensure_ascii=False)
        typical = len(self.tokenizer(shortest, add_special_tokens=False)["input_ids"]) + 2
        return min(typical, 256), min(len(shortest.encode()) + 2, 1024)

    def processor(self, schema: dict[str, Any], max_new_tokens: int, prompt_len: int,
                  n_rows: int) -> _GrammarProcessor:
        typical, worst = self.reserve(schema)
        return _GrammarProcessor(self, self.compile(schema, max_new_tokens), prompt_len, n_rows,
                                 close_from=max(0, max_new_tokens - typical),
                                 hard_limit=max_new_tokens + worst)


def pack_bitmask(allowed) -> Any:
    """A bool vector → xgrammar's int32 bitmask row (bit j of word k is token 32k + j)."""
    import torch

    words = math.ceil(allowed.shape[0] / 32)
    padded = torch.zeros(words * 32, dtype=torch.int64)
    padded[: allowed.shape[0]] = allowed.to(torch.int64)
    weights = torch.tensor([1 << j for j in range(32)], dtype=torch.int64)
    packed = (padded.view(words, 32) * weights).sum(dim=1)
    packed = torch.where(packed >= (1 << 31), packed - (1 << 32), packed)  # as signed int32
    return packed.to(torch.int32)[None, :]


class _GrammarProcessor:
    """Masks each row to its grammar; from ``close_from`` tokens on, to closing tokens when it can.

    Matcher state is keyed by the row's generated prefix, so beam search (rows reorder between
    steps) works as well as plain batches. After ``hard_limit`` tokens generate() stops anyway.
    """

    def __init__(self, tools: GrammarTools, compiled, prompt_len: int, n_rows: int,
                 close_from: int, hard_limit: int):
        import xgrammar as xgr

        self.tools, self.compiled = tools, compiled
        self.prompt_len, self.close_from, self.hard_limit = prompt_len, close_from, hard_limit
        self.bitmask = xgr.allocate_token_bitmask(n_rows, tools.vocab_size)
        self.states: dict[tuple[int, ...], Any] = {}

    def __call__(self, input_ids, scores):
        import xgrammar as xgr

        step = input_ids.shape[1] - self.prompt_len
        generated = input_ids[:, self.prompt_len:].tolist()
        states: dict[tuple[int, ...], Any] = {}
        xgr.reset_token_bitmask(self.bitmask)
        active = []
        for row, tokens in enumerate(generated):
            key = tuple(tokens)
            matcher = states.get(key)
            if matcher is None:
                matcher = states[key] = self._advance(tokens)
            if matcher.is_terminated():
                continue  # finished row: generate() pads it
            matcher.fill_next_token_bitmask(self.bitmask, row)
            if step >= self.close_from:
                self._prefer_closing(row)
            active.append(row)
        self.states = states
        if active:
            self.bitmask[active] &= self.tools.no_control
            xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device),
                                            vocab_size=self.tools.vocab_size, indices=active)
        return scores

    def _advance(self, tokens: list[int]):
        import xgrammar as xgr

        if not tokens:
            return xgr.GrammarMatcher(self.compiled)
        parent = self.states[tuple(tokens[:-1])]
        if parent.is_terminated():
            return parent
        child = parent.fork()
        if not child.accept_token(tokens[-1]):
            raise LocalModelError(f"internal: token {tokens[-1]} broke the grammar")
        return child

    def _prefer_closing(self, row: int) -> None:
        """Narrow the row's allowed tokens to closers where some are allowed.

        Inside a string ] and } are plain text, so there only a quote closes; elsewhere ] and } come
        first, and a quote only when a value must still be written (it opens, then closes, "").
        """
        allowed = self.bitmask[row]
        tools = self.tools
        in_string = any(_bit(allowed, t) for t in tools.letters)
        menus = [tools.quote_closers] if in_string else [tools.bracket_closers, tools.quote_closers]
        for menu in menus:
            narrowed = allowed & menu[0]
            if bool(narrowed.any()):
                self.bitmask[row] = narrowed
                return


def _bit(row, token_id: int) -> bool:
    return bool((int(row[token_id // 32]) >> (token_id % 32)) & 1)
