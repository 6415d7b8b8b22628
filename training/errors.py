"""User-facing training errors: part of sqlsynth's one hierarchy, so the CLI prints them without a traceback."""

from __future__ import annotations

from sqlsynth.errors import SqlsynthError


class TrainingError(SqlsynthError):
    """A training run cannot start: bad flags, unusable model or output directory.

    A missing --input-model raises ``sqlsynth.llm.bundled.ModelNotFoundError`` (same root).
    """


class DatasetError(TrainingError):
    """The training JSONL is empty, unreadable, or a line is not a valid record (``line`` says which)."""

