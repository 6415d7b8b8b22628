import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sqlsynth.errors import SeedError

from helpers import build, query


def test_csv_with_column_types_jsonl_and_parquet(make_project):
    root = make_project({
        "seeds/codes.csv": "code,amount,day\n007,1.5,2026-01-02\n010,2,2026-01-03\n",
        "seeds/schema.yml": "version: 2\nseeds:\n  - name: codes\n    config:\n      column_types: {code: VARCHAR, amount: 'DECIMAL(10,2)'}\n",
        "seeds/events.jsonl": '{"id": 1, "tags": ["a", "b"]}\n\n{"id": 2, "tags": []}\n',
    })
    pq.write_table(pa.table({"x": [1, 2, 3]}), root / "seeds" / "numbers.parquet")
    report = build(root, "seed")
    assert report.success, report.results
    assert query(root, "select code, amount::varchar, day from codes order by code") == [
        ("007", "1.50", __import__("datetime").date(2026, 1, 2)), ("010", "2.00", __import__("datetime").date(2026, 1, 3))]
    assert query(root, "select id, len(tags) from events order by id") == [(1, 2), (2, 0)]
    assert query(root, "select sum(x) from numbers") == [(6,)]


def test_ragged_csv_reports_line_and_keeps_previous_table(make_project):
    root = make_project({"seeds/people.csv": "id,name\n1,ada\n2,alan\n"})
    assert build(root, "seed").success
    (root / "seeds/people.csv").write_text("id,name\n1,ada\n2,alan,extra\n3,grace\n")
    report = build(root, "seed")
    assert not report.success
    message = report.results[0].message
    assert "seeds/people.csv:3" in message and "3 fields but the header has 2" in message
    assert query(root, "select count(*) from people") == [(2,)]


def test_bad_jsonl_line(make_project):
    root = make_project({"seeds/e.jsonl": '{"a": 1}\n{"a": \n'})
    report = build(root, "seed")
    assert "seeds/e.jsonl:2" in report.results[0].message


def test_unknown_column_type_column(make_project):
    root = make_project({
        "seeds/s.csv": "a,b\n1,2\n",
        "seeds/schema.yml": "version: 2\nseeds:\n  - name: s\n    config:\n      column_types: {c: INTEGER}\n",
    })
    report = build(root, "seed")
    assert "column_types names 'c'" in report.results[0].message


def test_value_not_matching_type(make_project):
    root = make_project({
        "seeds/s.csv": "a\n1\nx\n",
        "seeds/schema.yml": "version: 2\nseeds:\n  - name: s\n    config:\n      column_types: {a: INTEGER}\n",
    })
    report = build(root, "seed")
    assert report.results[0].status == "error"
    assert "seeds/s.csv" in report.results[0].message


def test_empty_csv_is_an_error():
    import pathlib
    import tempfile

    from sqlsynth.seeds import csv_header
    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d) / "e.csv"
        p.write_text("")
        with pytest.raises(SeedError):
            csv_header(p, "seeds/e.csv", ",", '"')


def test_reader_error_after_the_first_batch_keeps_file_line_and_hint(make_project):
    rows = "".join(f'  <row Id="{i}" PostTypeId="1" Score="1" Body="text {i}" />\n' for i in range(1, 30000))
    root = make_project({"seeds/Posts.xml": f"<posts>\n{rows}  <row Id=\"x\" PostTypeId=\"1\" />\n</posts>\n"})
    report = build(root, "seed")
    message = report.results[0].message
    assert report.results[0].status == "error"
    assert "seeds/Posts.xml:30001" in message and "Invalid Input Error" not in message
