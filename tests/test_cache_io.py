"""`sqlsynth cache export|import`: one run's answers seed another project's cache (0 calls), merges by key,
bad files are one message (exit 2) that leaves the cache as it was; on Spark the same file round-trips."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ai_query_cli import cli, make_project

from conftest import run_cli
from llm_support import stub


def _cached(project) -> int:
    import duckdb

    with duckdb.connect(str(project / "target" / "p.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from sqlsynth.cache").fetchall()[0][0]


@pytest.fixture
def teacher():
    with stub() as server:
        yield server


@pytest.fixture
def exported(tmp_path, teacher):
    """A project run against the stub teacher (16 answers cached) and its cache exported to a file."""
    (tmp_path / "a").mkdir()
    project = make_project(tmp_path / "a", teacher.url)
    assert cli(project, "run").returncode == 0
    assert teacher.stats.requests == 16
    file = tmp_path / "cache.parquet"
    done = cli(project, "cache", "export", str(file))
    assert done.returncode == 0, done.stderr
    assert "Exported 16 cached answers" in done.stderr
    return project, file


def test_an_imported_cache_answers_a_fresh_project_without_calls(exported, teacher, tmp_path):
    """Keys hold the endpoint's base_url and model: the fresh project names the same server."""
    _, file = exported
    table = pq.read_table(file)
    assert table.num_rows == 16 and table.schema.metadata[b"sqlsynth.cache"] == b"1"
    (tmp_path / "b").mkdir()
    fresh = make_project(tmp_path / "b", teacher.url)
    first = cli(fresh, "cache", "import", str(file))
    assert first.returncode == 0, first.stderr
    assert "Imported 16 new answers" in first.stderr and "0 already cached" in first.stderr
    again = cli(fresh, "cache", "import", str(file))
    assert "Imported 0 new answers" in again.stderr and "16 already cached" in again.stderr
    assert _cached(fresh) == 16
    run = cli(fresh, "run")
    assert run.returncode == 0, run.stderr
    assert teacher.stats.requests == 16  # the first project's calls only


def test_import_merges_keeps_existing_answers_and_counts_a_repeated_key_once(exported, tmp_path):
    project, file = exported
    table = pq.read_table(file)
    changed = table.set_column(table.schema.get_field_index("response"), "response",
                               pa.array(["other"] * table.num_rows))
    doubled = pa.concat_tables([table.slice(0, 3), changed.slice(0, 3)])  # 3 keys, each twice
    pq.write_table(doubled, tmp_path / "doubled.parquet")
    done = cli(project, "cache", "import", str(tmp_path / "doubled.parquet"))
    assert done.returncode == 0 and "Imported 0 new answers" in done.stderr and "3 already cached" in done.stderr

    (tmp_path / "c").mkdir()
    fresh = make_project(tmp_path / "c", "http://127.0.0.1:9")
    assert "Imported 3 new answers" in cli(fresh, "cache", "import", str(tmp_path / "doubled.parquet")).stderr
    out = tmp_path / "c.parquet"
    assert cli(fresh, "cache", "export", str(out)).returncode == 0
    assert "other" not in pq.read_table(out)["response"].to_pylist()  # the first row per key won


def test_export_of_one_endpoint_and_of_a_project_never_run(exported, tmp_path):
    project, _ = exported
    one = cli(project, "cache", "export", str(tmp_path / "one.parquet"), "--endpoint", "teacher")
    assert "Exported 16 cached answers" in one.stderr
    assert set(pq.read_table(tmp_path / "one.parquet")["endpoint"].to_pylist()) == {"teacher"}
    typo = cli(project, "cache", "export", str(tmp_path / "typo.parquet"), "--endpoint", "teachr")
    assert typo.returncode == 2 and "--endpoint teachr: no such endpoint" in typo.stderr
    assert not (tmp_path / "typo.parquet").exists()
    (tmp_path / "d").mkdir()
    empty = make_project(tmp_path / "d", "http://127.0.0.1:9")
    done = cli(empty, "cache", "export", str(tmp_path / "empty.parquet"))
    assert done.returncode == 0 and "Exported 0" in done.stderr
    assert not (empty / "target" / "p.duckdb").exists()  # export opened nothing for writing


def _bad_files(tmp_path, good: pa.Table) -> dict[str, tuple]:
    text = tmp_path / "notes.parquet"
    text.write_text("key,response\n")
    columns = tmp_path / "columns.parquet"
    pq.write_table(pa.table({"id": ["x"], "answer": ["y"]}), columns)
    bad_key = tmp_path / "key.parquet"
    pq.write_table(good.set_column(0, "key", pa.array(["nothex"] + good["key"].to_pylist()[1:])), bad_key)
    null_response = tmp_path / "null.parquet"
    index = good.schema.get_field_index("response")
    pq.write_table(good.set_column(index, "response", pa.array([None] * good.num_rows, pa.string())),
                   null_response)
    tokens = tmp_path / "tokens.parquet"
    index = good.schema.get_field_index("prompt_tokens")
    pq.write_table(good.set_column(index, "prompt_tokens", pa.array(["many"] * good.num_rows)), tokens)
    return {
        "missing": (tmp_path / "nope.parquet", "no such file"),
        "text": (text, "not a Parquet file"),
        "columns": (columns, "missing column(s) key, endpoint, response; unknown column(s) id, answer"),
        "key": (bad_key, "row 1: 'nothex' is not an ai_query cache key"),
        "null": (null_response, "row 1: response is empty (16 such rows)"),
        "tokens": (tokens, "column prompt_tokens cannot be read as int32"),
    }


def test_a_bad_file_is_one_message_and_the_cache_is_untouched(exported, tmp_path):
    project, file = exported
    for name, (path, words) in _bad_files(tmp_path, pq.read_table(file)).items():
        done = cli(project, "cache", "import", str(path))
        assert done.returncode == 2, (name, done.stderr)
        assert words in done.stderr and str(path) in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr and "cache export" in done.stderr, name
    assert _cached(project) == 16


def spark_cli(project, *args: str):
    """A command on local Spark: a JVM start each time, minutes on a loaded box."""
    return run_cli("--project-dir", str(project), *args, timeout=900)


@pytest.mark.spark
def test_the_file_round_trips_through_the_spark_cache(exported, tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark local mode needs Java 17")
    project, file = exported
    with (project / "project.yml").open("a") as handle:
        handle.write("targets:\n  spark:\n    type: spark\n    remote: local[1]\n")
    first = spark_cli(project, "cache", "import", str(file), "--target", "spark")
    assert first.returncode == 0, first.stderr
    assert "Imported 16 new answers" in first.stderr
    back = tmp_path / "back.parquet"
    done = spark_cli(project, "cache", "export", str(back), "--target", "spark")
    assert done.returncode == 0 and "Exported 16 cached answers" in done.stderr, done.stderr
    assert pq.read_table(back).equals(pq.read_table(file))  # same keys, answers, tokens, timestamps
    again = spark_cli(project, "cache", "import", str(back), "-t", "spark")
    assert "Imported 0 new answers" in again.stderr and "16 already cached" in again.stderr
