import pytest

from sqlsynth.api import Options, list_nodes
from sqlsynth.errors import ProjectError, SelectionError


def _chain(make_project):
    return make_project({
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select * from {{ ref('a') }}",
        "models/sub/c.sql": "{{ config(tags=['nightly']) }}\nselect * from {{ ref('b') }}",
        "models/sub/d.sql": "select * from {{ ref('c') }}",
        "models/e.sql": "select 2 as id",
    })


def names(root, select=None, exclude=None, types=("model",)):
    return [n.name for n in list_nodes(Options(project_dir=root, select=select or [], exclude=exclude or []), types)]


@pytest.mark.parametrize("selector,expected", [
    ("b", ["b"]),
    ("+c", ["a", "b", "c"]),
    ("c+", ["c", "d"]),
    ("+c+", ["a", "b", "c", "d"]),
    ("1+c", ["b", "c"]),
    ("c+1", ["c", "d"]),
    ("tag:nightly", ["c"]),
    ("path:models/sub", ["c", "d"]),
    ("a+,tag:nightly", ["c"]),
    ("config.materialized:view", ["a", "b", "c", "d", "e"]),
])
def test_selection(make_project, selector, expected):
    assert names(_chain(make_project), select=[selector]) == expected


def test_union_and_exclude(make_project):
    root = _chain(make_project)
    assert names(root, select=["a e"]) == ["a", "e"]
    assert names(root, select=["a+"], exclude=["path:models/sub"]) == ["a", "b"]


def test_selection_matching_nothing(make_project):
    with pytest.raises(SelectionError) as info:
        names(_chain(make_project), select=["bb"])
    assert "did you mean 'b'" in info.value.hint


def test_cycle_reports_full_path(make_project):
    root = make_project({
        "models/a.sql": "select * from {{ ref('c') }}",
        "models/b.sql": "select * from {{ ref('a') }}",
        "models/c.sql": "select * from {{ ref('b') }}",
    })
    with pytest.raises(ProjectError) as info:
        names(root)
    message = info.value.message
    assert "cycle" in message
    path = message.split(": ", 1)[1].split(" -> ")
    assert len(path) == 4 and path[0] == path[-1] and set(path) == {"a", "b", "c"}
