import pytest
from pydantic import BaseModel

from sqlsynth.errors import UdfError
from sqlsynth.python_udfs import sql_type

from helpers import build, query

UDFS = '''
from typing import Optional
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel
from sqlsynth import udf


class Verdict(BaseModel):
    ok: bool
    reasons: list[str]


@udf
def words(text: str) -> list[str]:
    return text.split()


@udf(null_handling="special")
def text_info(text: Optional[str]) -> str:
    return "missing" if text is None else f"{len(text)} chars"


@udf
def judge(score: int) -> Verdict:
    return {"ok": score > 2, "reasons": ["high"] if score > 2 else []}


@udf(vectorized=True)
def shout(text: str) -> str:
    return pc.utf8_upper(text)


def not_exported(x: int) -> int:
    return x
'''


def test_udfs_registered_with_types_from_hints(make_project):
    root = make_project({
        "udfs/text.py": UDFS,
        "models/m.sql": """
            {{ config(materialized='table') }}
            select words('a b c') as w, text_info(null) as d1, text_info('abc') as d2,
                   judge(3) as v, shout(name) as s
            from (values ('ada'), ('alan')) t(name)
        """,
        "models/n.sql": "{{ config(materialized='table') }}\nselect unnest(words('x y')) as word",
    })
    assert build(root, "run").success
    rows = query(root, "select w, d1, d2, v.ok, v.reasons, s from m order by s")
    assert rows[0] == (["a", "b", "c"], "missing", "3 chars", True, ["high"], "ADA")
    assert query(root, "select count(*) from n") == [(2,)]


def test_pydantic_models_known_by_name(make_project):
    from sqlsynth.project import load_project
    root = make_project({"udfs/text.py": UDFS})
    project = load_project(root)
    assert "Verdict" in project.pydantic_models
    assert "not_exported" not in [u.name for u in project.udfs]


def test_broken_udf_file_reports_path_and_line(make_project):
    root = make_project({"udfs/bad.py": "from sqlsynth import udf\n\n@udf\ndef f(x: int) -> int\n    return x\n"})
    with pytest.raises(UdfError) as info:
        build(root, "run")
    assert info.value.path == "udfs/bad.py" and info.value.line == 4


def test_udf_raising_at_import(make_project):
    root = make_project({"udfs/bad.py": "import json\n\nvalue = json.loads('{')\n"})
    with pytest.raises(UdfError) as info:
        build(root, "run")
    assert info.value.line == 3 and "JSONDecodeError" in info.value.message


def test_missing_hint(make_project):
    root = make_project({"udfs/bad.py": "from sqlsynth import udf\n\n@udf\ndef f(x):\n    return x\n"})
    with pytest.raises(UdfError, match="missing type hint"):
        build(root, "run")


def test_sql_type_mapping():
    class Item(BaseModel):
        name: str
        tags: list[str]

    assert sql_type(int) == "BIGINT"
    assert sql_type(list[float]) == "DOUBLE[]"
    assert sql_type(dict[str, int]) == "MAP(VARCHAR, BIGINT)"
    assert sql_type(Item) == 'STRUCT("name" VARCHAR, "tags" VARCHAR[])'
    assert sql_type(int | None) == "BIGINT"
