"""Place the lineage graph in layers (a Sugiyama-style layout, small enough to own).

A node's layer is its longest path from a root, so every edge points down (pipelines are long and
narrow: top to bottom fits a screen better than dbt's left to right). Within a layer nodes are
ordered by the mean position of their neighbours (a few sweeps of the barycenter heuristic), which
keeps edges short and crossings few for graphs of the size a project has (tens to hundreds).
"""

from __future__ import annotations

from collections.abc import Iterable

NODE_W, NODE_H = 190, 34
GAP_X, GAP_Y = 18, 44
SWEEPS = 4


def layers(ids: list[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node (edges whose ends are unknown are ignored)."""
    known = set(ids)
    parents: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        if a in known and b in known and a != b:
            parents[b].append(a)
    layer: dict[str, int] = {}

    def visit(node: str, stack: set[str]) -> int:
        if node in layer:
            return layer[node]
        stack.add(node)  # a cycle cannot be built, but must not recurse forever here
        depth = max((visit(p, stack) + 1 for p in parents[node] if p not in stack), default=0)
        stack.discard(node)
        layer[node] = depth
        return depth

    for node in ids:
        visit(node, set())
    return layer


def _order(rows: list[list[str]], neighbours: dict[str, list[str]]) -> None:
    """Reorder each row by its neighbours' centred positions, sweeping down then up."""
    for sweep in range(SWEEPS):
        sequence = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for r in sequence:
            position = {n: i - (len(row) - 1) / 2 for row in rows for i, n in enumerate(row)}
            own = set(rows[r])

            def centre(node: str, position: dict[str, float] = position, own: set[str] = own) -> float:
                near = [position[m] for m in neighbours[node] if m not in own]
                return sum(near) / len(near) if near else position[node]

            rows[r].sort(key=centre)


def layout(ids: list[str], edges: list[tuple[str, str]]) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Top-left corner of each node and the drawing's width and height."""
    layer = layers(ids, edges)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in ids:
        rows[layer[node]].append(node)
    neighbours: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        if a in neighbours and b in neighbours:
            neighbours[a].append(b)
            neighbours[b].append(a)
    _order(rows, neighbours)
    widest = max((len(row) for row in rows), default=0)
    width = max(widest * (NODE_W + GAP_X) - GAP_X, NODE_W)
    positions = {}
    for r, row in enumerate(rows):
        offset = (width - (len(row) * (NODE_W + GAP_X) - GAP_X)) // 2  # centre short rows
        for i, node in enumerate(row):
            positions[node] = (offset + i * (NODE_W + GAP_X), r * (NODE_H + GAP_Y))
    height = max(len(rows) * (NODE_H + GAP_Y) - GAP_Y, NODE_H)
    return positions, width, height
