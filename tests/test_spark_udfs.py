"""Python functions on real Apache Spark (local mode): a project's udfs/ functions and the built-in text
functions are Arrow UDFs of the session and give the values DuckDB gives (types, NULLs, lists, structs);
embed() loads MiniLM once per Python worker, not per batch."""

import textwrap

import pytest
from spark_support import local_session, require_local_spark

pytestmark = pytest.mark.spark
require_local_spark()

UDFS = '''
import pyarrow as pa
from pydantic import BaseModel

from sqlsynth import udf


class Shout(BaseModel):
    text: str
    words: list[str]


@udf
def shout(text: str, times: int) -> Shout:
    return {"text": (text.upper() + "!") * times, "words": text.split()}  # DuckDB takes a dict for a STRUCT


@udf(null_handling="special")
def text_size(text: str) -> str:
    return "nothing" if text is None else f"{len(text)} chars"


@udf
def strict(text: str) -> str:
    if text == "boom":
        raise ValueError("no boom here")
    return text


@udf(vectorized=True)
def initials(texts: str) -> list[str]:
    return pa.array([[w[0] for w in t.split()] for t in texts.to_pylist()], type=pa.list_(pa.string()))


@udf(vectorized=True)
def embedder_loads(texts: str) -> int:
    from sqlsynth.corpus.models import load_embedder

    return pa.array([load_embedder.cache_info().misses] * len(texts), type=pa.int64())
'''

HTML = "<p>Water <b>deeply</b> &amp; rarely.</p><ul><li>mulch</li><li>shade</li></ul><pre>x = 1</pre>"
TEXT = ("Tomatoes want full sun. Water them deeply twice a week rather than a little every day, "
        "so the roots grow down. Mulch keeps the soil moist and cool in July.")
ROWS = [(1, HTML, TEXT, 2), (2, "<h1>Soil</h1><p>loam</p>", "Compost in autumn.", 1), (3, None, None, None)]
VALUES = ", ".join("(" + ", ".join("null" if v is None else repr(v) if isinstance(v, str) else str(v)
                                   for v in row) + ")" for row in ROWS)
QUERIES = {
    "project": "select id, shout(text, n) as s, text_size(text) as d, initials(text) as i from t",
    "text": "select id, html_to_text(html) as h, token_count(text, 'all-minilm-l6-v2') as n, "
            "token_count(text, 'default') as n2, chunk_text(text, 12, 4) as c from t",
    "context": "select id, context_window('default') as w, trim_context(array(named_struct('id', 'a', "
               "'text', text, 'distance', 0.2d), named_struct('id', 'b', 'text', 'short', 'distance', 0.1d)), "
               "10, 'all-minilm-l6-v2') as tc, trim_context(null, 10, 'all-minilm-l6-v2') as tn from t",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from sqlsynth.project import load_project

    root = tmp_path_factory.mktemp("sparkudfs") / "p"
    (root / "udfs").mkdir(parents=True)
    (root / "udfs/text_tools.py").write_text(textwrap.dedent(UDFS))
    (root / "project.yml").write_text("name: p\ntargets:\n  spark:\n    type: spark\n    remote: local[2]\n")
    return load_project(root)


@pytest.fixture(scope="module")
def spark(project):
    """One SparkSession (one JVM) for the module, with the project's functions registered."""
    from sqlsynth.targets.spark_udfs import register_python_functions

    with local_session(project.target_dir / "spark") as session:
        names = register_python_functions(session, project, connect=False)
        assert {"shout", "initials", "html_to_text", "embed", "chunk_text", "token_count"} <= set(names)
        assert "retrieve" not in names  # single-machine: refused at compile time on Spark
        session.sql(f"create or replace temporary view t as select * from values {VALUES} as t(id, html, text, n)")
        yield session


@pytest.fixture(scope="module")
def duck(project):
    from sqlsynth.database import Database

    db = Database(project)
    db.con.execute(f"create temporary table t as select * from (values {VALUES}) t(id, html, text, n)")
    yield db.con
    db.close()


def _duck_rows(con, sql: str) -> list[dict]:
    # DuckDB spells array(named_struct(...)) as list_value({...}); the SQL is the same otherwise
    sql = sql.replace("array(named_struct('id', 'a', 'text', text, 'distance', 0.2d), named_struct('id', 'b', "
                      "'text', 'short', 'distance', 0.1d))",
                      "[{'id': 'a', 'text': text, 'distance': 0.2::double}, "
                      "{'id': 'b', 'text': 'short', 'distance': 0.1::double}]")
    result = con.execute(sql + " order by id")
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _spark_rows(spark, sql: str) -> list[dict]:
    return [row.asDict(recursive=True) for row in spark.sql(sql + " order by id").collect()]


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_values_equal_duckdb(spark, duck, query):
    expected, got = _duck_rows(duck, QUERIES[query]), _spark_rows(spark, QUERIES[query])
    assert got == expected
    assert any(v is None for row in got for v in row.values())  # NULLs went through too


def test_types_are_spark_types(spark):
    frame = spark.sql(QUERIES["project"] + " union all " + QUERIES["project"])
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    assert types["s"] == "struct<text:string,words:array<string>>"
    assert types["i"] == "array<string>" and types["d"] == "string"
    frame = spark.sql("select embed('x') as e, token_count('x', 'default') as n, chunk_text('x', 5, 1) as c")
    assert [f.dataType.simpleString() for f in frame.schema.fields] == ["array<float>", "int", "array<string>"]


def test_embed_equals_duckdb_and_loads_the_model_once_per_worker(spark, duck):
    import numpy as np

    texts = [f"{TEXT} ({i})" for i in range(40)]
    values = ", ".join(f"({i}, '{t}')" for i, t in enumerate(texts))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "4")  # ten batches per query
    try:
        rows = spark.sql(f"select id, embed(x) as v, embedder_loads(x) as loads from values {values} as e(id, x) "
                         "order by id").collect()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert {row.loads for row in rows} == {1}  # each worker loaded MiniLM once, before its first batch
    expected = duck.execute(f"select id, embed(x) from (values {values}) e(id, x) order by id").fetchall()
    got = np.array([row.v for row in rows], dtype=np.float32)
    assert got.shape == (40, 384)
    assert np.allclose(got, np.array([v for _, v in expected], dtype=np.float32), atol=1e-5)
    assert spark.sql("select embed(null) as v").collect()[0].v is None


def test_a_failing_function_is_one_line_naming_the_file_and_cause(spark):
    from sqlsynth.targets.spark_udfs import python_error

    with pytest.raises(Exception) as raised:
        spark.sql("select token_count('x', 'no-such-model') as n").collect()
    assert python_error(str(raised.value)).startswith("CorpusError: no tokenizer for model 'no-such-model' (hint: ")
    with pytest.raises(Exception) as raised:
        spark.sql("select strict(x) from values ('ok'), ('boom') as v(x)").collect()
    assert python_error(str(raised.value)) == "udfs/text_tools.py:26 (strict): ValueError: no boom here"
