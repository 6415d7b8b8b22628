"""The DAG of nodes: cycle detection, topological order and dbt's node selection syntax."""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable

from .errors import ProjectError, SelectionError, did_you_mean
from .node_types import NodeType
from .project import Node, Project
from .state import PreviousState


class Graph:
    def __init__(self, nodes: dict[str, Node]):
        self.nodes = nodes
        self.parents: dict[str, list[str]] = {uid: [d for d in n.depends_on if d in nodes]
                                              for uid, n in nodes.items()}
        self.children: dict[str, list[str]] = defaultdict(list)
        for uid, parents in self.parents.items():
            for parent in parents:
                self.children[parent].append(uid)
        self._check_cycles()

    def _check_cycles(self) -> None:
        WHITE, GREY, BLACK = 0, 1, 2
        colour = dict.fromkeys(self.nodes, WHITE)
        for start in sorted(self.nodes):
            if colour[start] != WHITE:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = [start]
            colour[start] = GREY
            while stack:
                uid, index = stack[-1]
                parents = self.parents[uid]
                if index < len(parents):
                    stack[-1] = (uid, index + 1)
                    parent = parents[index]
                    if colour[parent] == GREY:
                        cycle = path[path.index(parent):] + [parent]
                        self._raise_cycle(list(reversed(cycle)))
                    if colour[parent] == WHITE:
                        colour[parent] = GREY
                        stack.append((parent, 0))
                        path.append(parent)
                else:
                    colour[uid] = BLACK
                    stack.pop()
                    path.pop()

    def _raise_cycle(self, cycle: list[str]) -> None:
        names = " -> ".join(self.nodes[uid].name for uid in cycle)
        first = self.nodes[cycle[1]]
        raise ProjectError(f"dependency cycle: {names}", path=first.original_file_path,
                           hint="a model cannot depend on itself through ref(); break one of these refs")

    def topological(self, subset: Iterable[str] | None = None) -> list[str]:
        """Kahn's algorithm, ties broken by name so the order is stable."""
        chosen = set(self.nodes if subset is None else subset)
        indegree = {uid: sum(1 for p in self.parents[uid] if p in chosen) for uid in chosen}
        ready = sorted(uid for uid, d in indegree.items() if d == 0)
        order: list[str] = []
        while ready:
            uid = ready.pop(0)
            order.append(uid)
            for child in self.children[uid]:
                if child in indegree:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        ready.append(child)
                        ready.sort()
        return order

    def ancestors(self, uid: str, depth: int | None = None) -> set[str]:
        return self._walk(uid, self.parents, depth)

    def descendants(self, uid: str, depth: int | None = None) -> set[str]:
        return self._walk(uid, self.children, depth)

    @staticmethod
    def _walk(uid: str, edges: dict[str, list[str]], depth: int | None) -> set[str]:
        seen: set[str] = set()
        frontier, level = [uid], 0
        while frontier and (depth is None or level < depth):
            level += 1
            nxt = []
            for item in frontier:
                for other in edges.get(item, []):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        return seen


# --------------------------------------------------------------------------------------------
# selection: "a b" is a union, "a,b" an intersection; +, n+, @ walk the graph

_OPERATORS = re.compile(r"^(?P<at>@)?(?P<up>\d*\+)?(?P<body>.+?)(?P<down>\+\d*)?$")


def _matches(project: Project, node: Node, method: str, value: str, state: PreviousState) -> bool:
    if method == "tag":
        return any(fnmatch.fnmatch(t, value) for t in node.tags)
    if method == "path":
        path = value.rstrip("/")
        return node.original_file_path == path or node.original_file_path.startswith(path + "/") \
            or fnmatch.fnmatch(node.original_file_path, path)
    if method in ("resource_type", "type"):
        return node.resource_type == value
    if method == "source":
        return node.resource_type == NodeType.SOURCE and fnmatch.fnmatch(f"{node.source_name}.{node.name}", value)
    if method.startswith("config."):
        return str(node.config.get(method[len("config."):])).lower() == value.lower()
    if method == "test_name":
        return bool(node.test_metadata) and node.test_metadata["name"] == value
    if method in ("state", "result"):
        return state.matches(project, node, method, value)
    if method == "fqn":
        return fnmatch.fnmatch(".".join(node.fqn), value) or fnmatch.fnmatch(node.name, value)
    raise SelectionError(f"unknown selection method '{method}:'",
                         hint="use name, tag:, path:, source:, config.<key>:, resource_type:, test_name:, "
                              "state:, result:")


def _select_atom(project: Project, graph: Graph, atom: str, state: PreviousState) -> set[str]:
    match = _OPERATORS.match(atom)
    if not match:
        raise SelectionError(f"cannot parse selector '{atom}'")
    body = match.group("body")
    method, _, value = body.partition(":") if ":" in body else ("fqn", "", body)
    seeds = {uid for uid, n in graph.nodes.items() if _matches(project, n, method, value, state)}
    selected = set(seeds)
    up, down = match.group("up"), match.group("down")
    for uid in seeds:
        if up:
            selected |= graph.ancestors(uid, int(up[:-1]) if up[:-1] else None)
        if down:
            selected |= graph.descendants(uid, int(down[1:]) if down[1:] else None)
        if match.group("at"):
            for child in graph.descendants(uid) | {uid}:
                selected |= graph.ancestors(child) | {child}
    return selected


def _select_expression(project: Project, graph: Graph, expressions: Iterable[str],
                       state: PreviousState) -> set[str]:
    result: set[str] = set()
    for expression in expressions:
        for union_part in expression.split():
            parts = [p for p in union_part.split(",") if p]
            chosen = _select_atom(project, graph, parts[0], state)
            for part in parts[1:]:
                chosen &= _select_atom(project, graph, part, state)
            result |= chosen
    return result


def select(project: Project, graph: Graph, select_: Iterable[str] | None, exclude: Iterable[str] | None,
           resource_types: Iterable[str], state: PreviousState | None = None) -> list[str]:
    """Selected node ids of the given types, in topological order; errors when nothing matches.
    `state:` and `result:` selectors compare with `state`, an earlier run's artifacts (--state DIR)."""
    types = set(resource_types)
    state = state or PreviousState()
    select_ = [s for s in (select_ or []) if s.strip()]
    if select_:
        chosen = _select_expression(project, graph, select_, state)
        _attach_tests(graph, chosen)
    else:
        chosen = set(graph.nodes)
    candidates = {uid for uid in chosen if graph.nodes[uid].resource_type in types}
    if exclude:
        excluded = _select_expression(project, graph, exclude, state)
        _attach_tests(graph, excluded)  # dbt: the tests of an excluded node are excluded with it
        chosen -= excluded
    chosen = {uid for uid in chosen if graph.nodes[uid].resource_type in types}
    if candidates and not chosen and exclude:
        raise SelectionError(f"--exclude {' '.join(exclude)} left no {'/'.join(sorted(types))} to run",
                             hint="narrow --exclude, or --select what should run")
    if not chosen and select_ and _compares_with_state(select_):
        _say_nothing_selected(select_)
    elif not chosen and select_:
        names = [n.name for n in graph.nodes.values() if n.resource_type in types]
        wanted = select_[0].split(",")[0].strip("+@0123456789").split(":")[-1]
        raise SelectionError(f"--select {' '.join(select_)} matched no {'/'.join(sorted(types))}",
                             hint=did_you_mean(wanted, names) or "run 'sqlsynth ls' to see the node names")
    return graph.topological(chosen)


def _say_nothing_selected(select_: list[str]) -> None:
    """An empty state/result selection is no error (exit 0) but says so, as dbt's "Nothing to do"."""
    from .console import console

    console.print(f"Nothing to do: --select {' '.join(select_)} matched no node "
                  "(nothing changed or failed since the --state run).", markup=False, highlight=False)


def _compares_with_state(expressions: list[str]) -> bool:
    """`state:modified` or `result:error` may rightly match nothing (no change, no failure)."""
    return any(re.search(r"(^|[\s,@+])(state|result):", e) for e in expressions)


def _attach_tests(graph: Graph, chosen: set[str]) -> None:
    """dbt's eager indirect selection: a test comes along when any node it tests is selected."""
    for uid, node in graph.nodes.items():
        if node.resource_type == NodeType.TEST and any(p in chosen for p in graph.parents[uid]):
            chosen.add(uid)
        elif node.resource_type == NodeType.UNIT_TEST and node.attached_node in chosen:
            chosen.add(uid)
