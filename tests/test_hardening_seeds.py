"""Issue 13 item 13: odd seed files get one message naming file, line and fix; the old table stays.

Every case goes through the real `sqlsynth seed` against the small built project.
"""

import pytest

from conftest import count_rows, run_cli, write_file


def _seed_error(root, name, *needles):
    result = run_cli("seed", "-s", name, cwd=root)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("filename,content,needle", [
    ("s.csv", b"", "the CSV file is empty"),
    ("s.csv", b"  \n\n", "the CSV file is empty"),
    ("s.jsonl", b"", "the JSONL file is empty"),
    ("s.jsonl", b"  \n\n", "the JSONL file is empty"),
], ids=["csv_0_byte", "csv_blank", "jsonl_0_byte", "jsonl_blank"])
def test_empty_csv_and_jsonl_behave_the_same(small, filename, content, needle):
    (small / "seeds/s.csv").unlink()
    (small / "seeds" / filename).write_bytes(content)
    _seed_error(small, "s", f"seeds/{filename}", needle, "a CSV header row, or at least one JSON object")
    assert count_rows(small, "s") == 2


def test_blank_line_in_a_one_column_csv_is_not_a_null_row(small):
    write_file(small, "seeds/s.csv", "id\n1\n\n2\n\n")
    assert run_cli("seed", cwd=small).returncode == 0
    assert count_rows(small, "s") == 2


def test_jsonl_with_mixed_types_names_key_and_line(small):
    write_file(small, "seeds/j.jsonl", '{"a": 1, "b": "x"}\n{"a": null}\n{"a": 2.5}\n{"a": "three"}\n')
    _seed_error(small, "j", "seeds/j.jsonl:4", "key 'a' is a string here but a number on line 1")


def test_corrupt_parquet_says_so(small):
    (small / "seeds/p.parquet").write_bytes(b"PAR1 not really parquet")
    _seed_error(small, "p", "seeds/p.parquet", "not a readable Parquet file", "export it again")


def test_bom_and_unterminated_quote_names_the_line_it_opened_on(small):
    (small / "seeds/s.csv").write_bytes(b'\xef\xbb\xbfid,name\n1,ada\n2,"bob\n3,cy\n')
    _seed_error(small, "s", "seeds/s.csv:3", "never closed", 'close the " quote')
    assert count_rows(small, "s") == 2


def test_bom_is_not_part_of_the_first_column_name(small):
    (small / "seeds/s.csv").write_bytes(b"\xef\xbb\xbfid\n5\n")
    assert run_cli("seed", cwd=small).returncode == 0
    shown = run_cli("show", "--inline", "select id from {{ ref('s') }}", "--output", "csv", cwd=small)
    assert shown.stdout.split() == ["id", "5"]
