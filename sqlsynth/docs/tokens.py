"""Counting tokens in exported text: a real tokenizer when one is at hand, else a stated estimate.

The site names which one it used. ``--tokenizer`` takes a tokenizer.json or a model directory holding
one; without it the bundled model's converted copy is used when it exists (sqlsynth.llm.bundled).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import SqlsynthError

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers


def _tokenizer_file(spec: str | Path | None) -> Path | None:
    if spec is not None:
        path = Path(spec).expanduser()
        candidate = path / "tokenizer.json" if path.is_dir() else path
        if not candidate.is_file():
            raise SqlsynthError("no tokenizer.json there", path=str(path),
                                hint="pass a tokenizer.json file or a model directory that holds one")
        return candidate
    from ..llm.bundled import cache_root

    found = sorted(cache_root().glob("*/tokenizer.json")) if cache_root().is_dir() else []
    return found[0] if found else None


def token_counter(spec: str | Path | None = None) -> tuple[Callable[[str], int], str]:
    """A function text → tokens and a label saying how tokens were counted."""
    path = _tokenizer_file(spec)
    if path is not None:
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # an unreadable file given by the user: name it
            raise SqlsynthError(f"cannot load the tokenizer: {exc}", path=str(path)) from None
        label = f"tokens counted with {path.parent.name}/{path.name}"
        return (lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)), label
    label = f"tokens estimated as characters / {CHARS_PER_TOKEN} (pass --tokenizer for exact counts)"
    return (lambda text: -(-len(text) // CHARS_PER_TOKEN)), label
