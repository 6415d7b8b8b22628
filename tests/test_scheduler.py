"""The DAG scheduler alone (no database): ready order, skip propagation, build's test edges."""

from sqlsynth.graph import Graph
from sqlsynth.node_types import NodeType
from sqlsynth.project import Node
from sqlsynth.scheduler import Scheduler, effective_parents


def _graph(edges: dict[str, list[str]], tests: tuple[str, ...] = ()) -> Graph:
    nodes = {uid: Node(uid, NodeType.TEST if uid in tests else NodeType.MODEL, uid, f"models/{uid}.sql",
                       depends_on=parents) for uid, parents in edges.items()}
    return Graph(nodes)


def _drain(schedule: Scheduler, failing: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Run one node at a time; returns the start order and the skipped nodes."""
    started, skipped = [], []
    while (uid := schedule.pop_ready()) is not None:
        started.append(uid)
        skipped += schedule.finish(uid, blocking=uid in failing)
    return started, skipped


def test_a_node_is_ready_once_all_its_parents_finished():
    graph = _graph({"a": [], "b": [], "c": ["a", "b"], "d": ["c"]})
    schedule = Scheduler(graph, ["a", "b", "c", "d"])
    assert schedule.pop_ready() == "a"
    assert schedule.finish("a", blocking=False) == []
    assert schedule.pop_ready() == "b"
    assert schedule.pop_ready() is None  # c still waits for b
    schedule.finish("b", blocking=False)
    assert _drain(schedule) == (["c", "d"], [])


def test_ties_follow_the_selection_order():
    graph = _graph({"root": [], "x": ["root"], "y": ["root"], "z": ["root"]})
    started, _ = _drain(Scheduler(graph, ["root", "z", "x", "y"]))
    assert started == ["root", "z", "x", "y"]


def test_a_blocking_result_skips_everything_downstream_depth_first_once():
    graph = _graph({"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": ["c", "d"], "other": []})
    started, skipped = _drain(Scheduler(graph, ["a", "b", "c", "d", "e", "other"]), failing={"a"})
    assert started == ["a", "other"]
    assert skipped == ["b", "c", "e", "d"]


def test_unselected_parents_do_not_hold_a_node_back():
    graph = _graph({"a": [], "b": ["a"], "c": ["b"]})
    assert _drain(Scheduler(graph, ["c"])) == (["c"], [])


def test_a_long_chain_is_skipped_without_recursion():
    edges = {"n0": []} | {f"n{i}": [f"n{i - 1}"] for i in range(1, 5000)}
    _, skipped = _drain(Scheduler(_graph(edges), list(edges)), failing={"n0"})
    assert len(skipped) == 4999


def test_build_makes_a_node_wait_for_the_tests_of_its_parents():
    graph = _graph({"raw": [], "raw_test": ["raw"], "clean": ["raw"], "self_check": ["raw", "clean"]},
                   tests=("raw_test", "self_check"))
    selected = ["raw", "raw_test", "clean", "self_check"]
    parents = effective_parents(graph, selected, build_mode=True)
    # clean waits for raw_test, not for self_check (that test reads clean itself)
    assert parents["clean"] == {"raw", "raw_test"}
    assert effective_parents(graph, selected, build_mode=False)["clean"] == {"raw"}
    started, skipped = _drain(Scheduler(graph, selected, build_mode=True), failing={"raw_test"})
    assert started == ["raw", "raw_test"]
    assert skipped == ["clean", "self_check"]
