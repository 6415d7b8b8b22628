"""The DAG scheduler of one run (dbt's GraphQueue): which selected nodes are ready, what a failure
skips downstream, and the extra edges `build` adds. It decides order only; runner.py executes nodes.
"""

from __future__ import annotations

from .errors import ExecutionError
from .graph import Graph
from .node_types import NodeType


def effective_parents(graph: Graph, selected: list[str], build_mode: bool) -> dict[str, set[str]]:
    """Each selected node's selected parents. In `build`, a node also waits for the tests of its
    parents (so a failing test skips what is built on the data it checked), unless that test reads
    the node itself."""
    chosen = set(selected)
    parents = {uid: {p for p in graph.parents[uid] if p in chosen} for uid in selected}
    if build_mode:
        _add_test_edges(graph, selected, parents)
        for uid in selected:  # dbt: a model's unit tests run first, and a failing one skips the model
            node = graph.nodes[uid]
            if node.resource_type == NodeType.UNIT_TEST and node.attached_node in parents:
                parents[node.attached_node].add(uid)
    return parents


def _add_test_edges(graph: Graph, selected: list[str], parents: dict[str, set[str]]) -> None:
    tests_of: dict[str, list[str]] = {}
    for uid in selected:
        if graph.nodes[uid].resource_type == NodeType.TEST:
            # generic and singular tests alike guard every node they read
            for parent in parents[uid]:
                tests_of.setdefault(parent, []).append(uid)
    for uid in selected:
        node = graph.nodes[uid]
        if node.resource_type == NodeType.TEST:
            continue
        # a unit test runs before its model, so a test reading that model cannot guard it either
        # (jaffle-shop: orders' unit test reads order_items, whose relationships test reads orders)
        built = node.attached_node if node.resource_type == NodeType.UNIT_TEST and node.attached_node else uid
        descendants = None
        for parent in list(parents[uid]):
            for test in tests_of.get(parent, []):
                if descendants is None:
                    descendants = graph.descendants(built) | {built}
                if test not in descendants:
                    parents[uid].add(test)


def _check_acyclic(parents: dict[str, set[str]]) -> None:
    """Every node must become ready; a cycle would end the run with nodes silently never run."""
    waiting = {uid: set(p) for uid, p in parents.items()}
    while ready := [uid for uid, p in waiting.items() if not p]:
        for uid in ready:
            del waiting[uid]
        for p in waiting.values():
            p.difference_update(ready)
    if waiting:
        cycle = sorted(waiting)[:6]
        raise ExecutionError("internal: the run order has a cycle among " + ", ".join(cycle),
                             hint="run them in two commands (e.g. `run` then `test`) and report this")


class Scheduler:
    """The ready set: a node is ready once every effective parent finished without blocking; ties go
    to the selection's (topological) order. A blocking result skips everything downstream of it."""

    def __init__(self, graph: Graph, selected: list[str], *, build_mode: bool = False):
        parents = effective_parents(graph, selected, build_mode)
        _check_acyclic(parents)
        self._children: dict[str, list[str]] = {uid: [] for uid in selected}
        for uid, node_parents in parents.items():
            for parent in node_parents:
                self._children[parent].append(uid)
        self._order = {uid: i for i, uid in enumerate(selected)}
        self._waiting = {uid: len(node_parents) for uid, node_parents in parents.items()}
        self._ready = sorted((uid for uid, n in self._waiting.items() if n == 0), key=self._order.get)
        self._finished: set[str] = set()

    def has_ready(self) -> bool:
        return bool(self._ready)

    def pop_ready(self) -> str | None:
        """The next node to start, or None when none is ready now."""
        while self._ready:
            uid = self._ready.pop(0)
            if uid not in self._finished:
                return uid
        return None

    def finish(self, uid: str, *, blocking: bool) -> list[str]:
        """Record that ``uid`` ended; returns the nodes this skips (depth first), empty unless blocking."""
        self._finished.add(uid)
        skipped: list[str] = []
        for child in self._children[uid]:
            if blocking:
                self._skip_downstream(child, skipped)
            elif child not in self._finished:
                self._waiting[child] -= 1
                if self._waiting[child] == 0:
                    self._ready.append(child)
        self._ready.sort(key=self._order.get)
        return skipped

    def _skip_downstream(self, start: str, skipped: list[str]) -> None:
        stack = [start]  # iterative depth-first, so a long chain cannot hit the recursion limit
        while stack:
            uid = stack.pop()
            if uid in self._finished:
                continue
            self._finished.add(uid)
            skipped.append(uid)
            stack.extend(reversed(self._children[uid]))
