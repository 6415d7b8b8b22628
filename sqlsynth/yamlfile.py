"""YAML loading that remembers line numbers, so config errors can point at the offending line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class LineDict(dict):
    """A mapping that knows the 1-based line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen and key != "<<":
                # YAML would silently keep the last one: a second `endpoints:` would drop the first
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first on line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        mapping = LineDict(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            self.construct_object(key, deep=deep): key.start_mark.line + 1 for key, _ in node.value
        }
        return mapping

    def construct_sequence(self, node, deep=False):
        seq = LineList(super().construct_sequence(node, deep=deep))
        seq.line = node.start_mark.line + 1
        return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence)


# Bounds that no real project file comes near, but that stop a hostile or broken one (an alias
# "billion laughs" bomb expands to ~10^9 values) before it exhausts memory in whatever walks the data.
MAX_YAML_BYTES = 20 * 1024 * 1024
MAX_YAML_NODES = 1_000_000


def _expanded_nodes(root: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the document holds once every alias is expanded (computed without expanding)."""

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total
        return total

    return size(root)


def _largest_entry_line(root: yaml.Node, sizes: dict[int, int]) -> int:
    """The line of the top-level key holding most of the expansion (e.g. `vars:`)."""
    if isinstance(root, yaml.MappingNode) and root.value:
        key, _ = max(root.value, key=lambda pair: sizes.get(id(pair[1]), 0))
        return key.start_mark.line + 1
    return root.start_mark.line + 1


def parse_yaml(text: str, shown: str) -> Any:
    """Parse YAML text with line numbers and size bounds; errors become ConfigError naming `shown`."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"file is {len(text) / 1e6:.0f} MB, over the {MAX_YAML_BYTES // 2**20} MiB limit for "
                          "YAML", path=shown, hint="keep data in seeds/ (CSV, JSONL, parquet), not in YAML")
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        if _expanded_nodes(node, sizes) > MAX_YAML_NODES:
            raise ConfigError(f"YAML expands to more than {MAX_YAML_NODES:,} values (aliases nested in "
                              "aliases)", path=shown, line=_largest_entry_line(node, sizes),
                              hint="write the values out, or remove the nested &anchor/*alias references")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: Path, display_path: str | None = None) -> Any:
    """Parse a YAML file; syntax errors become ConfigError with the file and line."""
    shown = display_path or str(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:  # refuse before reading it into memory
            raise ConfigError(f"file is over the {MAX_YAML_BYTES // 2**20} MiB limit for YAML", path=shown,
                              hint="keep data in seeds/ (CSV, JSONL, parquet), not in YAML")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=shown) from None
    try:
        return parse_yaml(text, shown)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"malformed YAML: {problem}", path=shown, line=line,
                          hint="check indentation and quoting near that line") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", path=shown) from None


def line_of(data: Any, loc: tuple) -> int | None:
    """The best-known line for a pydantic error location inside data loaded by load_yaml."""
    line = getattr(data, "line", None) or None
    node = data
    for part in loc:
        if isinstance(node, LineDict):
            if part in node.key_lines:
                line = node.key_lines[part]
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            line = getattr(node, "line", None) or line
        else:
            break
    return line
