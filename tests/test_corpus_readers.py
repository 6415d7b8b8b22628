"""Stack Exchange XML seeds: streaming, typed columns, and every kind of bad input with line/column."""

import datetime as dt
from pathlib import Path

import pytest

from sqlsynth.corpus import readers
from sqlsynth.corpus.errors import XmlSeedError
from sqlsynth.corpus.readers import read_stack_exchange_xml

from helpers import build, query

FIXTURE_POSTS = Path(__file__).resolve().parents[1] / "examples" / "gardening" / "seeds" / "Posts.xml"
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'


def read(tmp_path, text: str, name: str = "Posts.xml", **config):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_stack_exchange_xml(path, f"seeds/{name}", config).read_all()


def test_fixture_dump_is_typed_and_decoded():
    table = read_stack_exchange_xml(FIXTURE_POSTS, "seeds/Posts.xml", {}).read_all()
    assert table.num_rows == 20
    types = {f.name: str(f.type) for f in table.schema}
    assert types["Id"] == types["Score"] == types["ParentId"] == types["AnswerCount"] == "int64"
    assert types["CreationDate"] == "timestamp[us]" and types["Body"] == types["Title"] == "string"
    rows = {r["Id"]: r for r in table.to_pylist()}
    assert rows[1]["AcceptedAnswerId"] == 3 and rows[1]["ParentId"] is None
    assert rows[1]["CreationDate"] == dt.datetime(2012, 1, 10, 0, 10, 20, 100000)
    assert "fast &amp; the lower" in rows[1]["Body"]  # one level of XML escaping removed, the HTML kept
    assert "\n    value = adc.read(0)\n" in rows[12]["Body"]  # &#xA; newlines in code blocks survive


def test_seed_loads_into_duckdb_with_types(make_project):
    root = make_project({"seeds/Posts.xml": FIXTURE_POSTS.read_text()})
    report = build(root, "seed")
    assert report.success, report.results[0].message
    assert query(root, "select count(*), sum(Score), typeof(any_value(CreationDate)) from Posts") == [
        (20, 161, "TIMESTAMP")]


def test_malformed_xml_reports_line_and_column(tmp_path):
    text = HEAD + '<row Id="1" PostTypeId="1" Score="3"/>\n<row Id="2" PostTypeId="1" Score="4" <oops/>\n</posts>\n'
    with pytest.raises(XmlSeedError) as info:
        read(tmp_path, text)
    error = info.value
    assert (error.line, error.column) == (4, 38)
    assert str(error).startswith("seeds/Posts.xml:4:38: malformed XML: not well-formed")
    assert "keep_partial: true" in error.hint


def test_truncated_dump_keeps_what_parsed_only_when_asked(tmp_path, capsys):
    text = HEAD + '<row Id="1" PostTypeId="1" Score="3"/>\n<row Id="2" PostTypeId="2" ParentId="1" Sco'
    with pytest.raises(XmlSeedError, match="malformed XML"):
        read(tmp_path, text)
    table = read(tmp_path, text, keep_partial=True)
    assert table.column("Id").to_pylist() == [1]
    assert "kept the 1 rows before it" in capsys.readouterr().err


def test_malformed_xml_through_the_cli_keeps_the_previous_table(make_project, cli):
    root = make_project({"seeds/Posts.xml": HEAD + '<row Id="1" PostTypeId="1"/>\n</posts>\n'})
    assert build(root, "seed").success
    (root / "seeds/Posts.xml").write_text(HEAD + '<row Id="1" PostTypeId="1"/>\n<row Id="2" & />\n</posts>\n')
    result = cli("--project-dir", str(root), "seed")
    assert result.returncode == 1
    assert "seeds/Posts.xml:4:13: malformed XML" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert query(root, "select count(*) from Posts") == [(1,)]


def test_missing_required_attribute(tmp_path):
    text = HEAD + '<row Id="1" PostTypeId="1"/>\n  <row Id="2" Score="1"/>\n</posts>\n'
    with pytest.raises(XmlSeedError) as info:
        read(tmp_path, text)
    assert (info.value.line, info.value.column) == (4, 3)
    assert "missing the required attribute 'PostTypeId'" in info.value.message
    # required_columns is configurable; missing optional attributes are NULL
    table = read(tmp_path, text, required_columns=["Id"])
    assert table.column("PostTypeId").to_pylist() == [1, None]


def test_missing_id_in_other_dump_files(tmp_path):
    with pytest.raises(XmlSeedError, match="missing the required attribute 'Id'"):
        read(tmp_path, '<comments>\n<row PostId="1" Text="hi"/>\n</comments>', name="Comments.xml")


def test_value_of_the_wrong_type_names_row_and_fix(tmp_path):
    text = HEAD + '<row Id="1" PostTypeId="1" Score="12"/>\n<row Id="2" PostTypeId="1" Score="lots"/>\n</posts>'
    with pytest.raises(XmlSeedError) as info:
        read(tmp_path, text)
    assert info.value.line == 4 and 'Score="lots" is not a valid BIGINT' in info.value.message
    assert "column_types: {Score: VARCHAR}" in info.value.hint
    assert read(tmp_path, text, column_types={"Score": "VARCHAR"}).column("Score").to_pylist() == ["12", "lots"]


def test_unsupported_column_type(tmp_path):
    with pytest.raises(XmlSeedError, match="type 'DECIMAL' of column 'Score' is not supported"):
        read(tmp_path, HEAD + "</posts>", column_types={"Score": "DECIMAL"})


def test_empty_corpus_is_an_error_unless_allowed(tmp_path):
    with pytest.raises(XmlSeedError, match="the corpus is empty"):
        read(tmp_path, HEAD + "</posts>\n")
    assert read(tmp_path, HEAD + "</posts>\n", allow_empty=True).num_rows == 0
    with pytest.raises(XmlSeedError, match="malformed XML: no element found"):
        read(tmp_path, "")


def test_attribute_first_seen_late_needs_a_declared_column(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 64)
    monkeypatch.setattr(readers, "BATCH_ROWS", 1)
    rows = "".join(f'<row Id="{i}" PostTypeId="1"/>\n' for i in range(1, 6))
    text = HEAD + rows + '<row Id="9" PostTypeId="1" Mood="sunny"/>\n</posts>\n'
    with pytest.raises(XmlSeedError) as info:
        read(tmp_path, text)
    assert info.value.line == 8 and "'Mood'" in info.value.message
    table = read(tmp_path, text, column_types={"Mood": "VARCHAR"})
    assert table.column("Mood").to_pylist()[-1] == "sunny" and table.num_rows == 6


def test_streams_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 256)
    monkeypatch.setattr(readers, "BATCH_ROWS", 10)
    rows = "".join(f'<row Id="{i}" PostTypeId="2" ParentId="1" Body="&lt;p&gt;answer {i}&lt;/p&gt;"/>\n'
                   for i in range(100))
    path = tmp_path / "Posts.xml"
    path.write_text(HEAD + rows + "</posts>\n")
    reader = read_stack_exchange_xml(path, "seeds/Posts.xml", {})
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == 100 and len(sizes) > 5


def test_error_found_while_duckdb_streams_the_file_names_line_and_column(make_project, monkeypatch):
    monkeypatch.setattr(readers, "BATCH_ROWS", 4)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 64)
    rows = "".join(f'<row Id="{i}" PostTypeId="1"/>\n' for i in range(1, 30))
    root = make_project({"seeds/Posts.xml": HEAD + rows + '<row Id="x" PostTypeId="1"/>\n</posts>\n'})
    report = build(root, "seed")
    assert not report.success
    message = report.results[0].message
    assert 'seeds/Posts.xml:32:1: attribute Id="x" is not a valid BIGINT' in message
