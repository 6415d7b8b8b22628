"""Text built-ins: html_to_text, chunk_text, token_count, read_documents — from SQL, in any project."""

import re

import duckdb
import pytest

from sqlsynth.config import ProjectConfig
from sqlsynth.corpus.chunking import split
from sqlsynth.corpus.html import html_to_text
from sqlsynth.corpus.models import count_tokens, load_tokenizer
from sqlsynth.corpus.sql_functions import register_corpus_functions
from sqlsynth.python_udfs import FunctionContext


@pytest.fixture
def con(tmp_path):
    context = FunctionContext(tmp_path, ProjectConfig(name="p"), tmp_path / "target", tmp_path / "db.duckdb")
    connection = duckdb.connect()
    register_corpus_functions(connection, context)
    yield connection
    connection.close()


def one(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()[0][0]


def test_html_entities_paragraphs_and_inline_code():
    html = "<p>Caf&eacute; &amp; &lt;garden&gt; &#8212; &quot;ok&quot;</p><p>Run <code>ls -l</code> now.</p>"
    assert html_to_text(html) == 'Café & <garden> — "ok"\n\nRun `ls -l` now.'


def test_code_blocks_are_kept_verbatim_in_fences():
    html = '<p>Try:</p><pre class="lang-py"><code>if x &lt; 3:\n    print("a  b")\n</code></pre><p>done</p>'
    assert html_to_text(html) == 'Try:\n\n```\nif x < 3:\n    print("a  b")\n```\n\ndone'


def test_lists_nested_and_numbered_and_links_kept_as_text():
    html = ('<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>'
            '<p>See <a href="https://rhs.example.org/x">the RHS page</a> or <a href="#top">top</a>.</p>')
    assert html_to_text(html) == ("- one\n- two\n  1. a\n  2. b\n\n"
                                  "See the RHS page (https://rhs.example.org/x) or top.")


def test_html_that_is_not_well_formed_loses_no_text():
    html = "<p>unclosed <b>bold <li>item</p></div><div>after <i>x &amp y <pre>code"
    text = html_to_text(html)
    for word in ("unclosed", "bold", "- item", "after", "x & y", "code"):
        assert word in text
    assert text.endswith("```")  # an unclosed <pre> still gets its closing fence
    assert html_to_text("<<<>>> < p >") is not None
    assert html_to_text(None) is None


def test_scripts_styles_tables_images():
    html = ("<style>p{}</style><script>alert(1)</script><table><tr><th>a</th><th>b</th></tr>"
            '<tr><td>1</td><td>2</td></tr></table><img src="x.png" alt="a leaf">')
    assert html_to_text(html) == "a | b\n1 | 2\n\n[image: a leaf]"


def test_html_to_text_from_sql(con):
    assert one(con, "select html_to_text('<p>a &amp; b</p>')") == "a & b"
    assert one(con, "select html_to_text(NULL)") is None


def test_chunk_text_windows_overlap_and_limits(con):
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    text = " ".join(f"Sentence number {i} is about watering tomatoes." for i in range(40))
    chunks = one(con, "select chunk_text(?, 50, 10)", text)
    assert len(chunks) > 5
    assert all(n <= 50 for n in count_tokens(tokenizer, chunks))
    assert all(c.startswith("Sentence") for c in chunks[1:])  # cut at sentence ends, never mid-word
    assert chunks[0].split()[-2:] == ["watering", "tomatoes."]
    # consecutive chunks share text (the overlap)
    assert chunks[1].split()[0:3] == chunks[0].split()[-9:-6] or chunks[1][:20] in chunks[0]
    assert one(con, "select chunk_text('short text', 50, 10)") == ["short text"]
    assert one(con, "select chunk_text('', 50, 10)") == []


def test_chunk_text_prefers_paragraph_breaks():
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    text = ("word " * 30).strip() + "\n\n" + ("other " * 30).strip()
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    chunks = split(text, encoded["offset_mapping"], 40, 0)
    assert chunks[0] == ("word " * 30).strip()


@pytest.mark.parametrize("args, message", [
    ("0, 0", "max_tokens must be > 0 (got 0)"),
    ("-5, 0", "max_tokens must be > 0"),
    ("10, 10", "overlap must be >= 0 and < max_tokens"),
    ("10, -1", "overlap must be >= 0 and < max_tokens"),
])
def test_chunk_text_bad_arguments(con, args, message):
    with pytest.raises(duckdb.Error, match=re.escape(message)) as info:
        con.execute(f"select chunk_text('some text', {args})").fetchall()
    assert "hint:" in str(info.value).splitlines()[0]  # the fix is on the line the CLI shows


def test_token_count_uses_the_models_own_tokenizer(con):
    text = "Tomatoes need consistent watering."
    minilm = one(con, "select token_count(?, 'all-minilm-l6-v2')", text)
    assert minilm == len(load_tokenizer("all-minilm-l6-v2")(text, add_special_tokens=False)["input_ids"])
    assert one(con, "select token_count(NULL, 'all-minilm-l6-v2')") is None


def test_token_count_unknown_model(con):
    with pytest.raises(duckdb.Error, match="no tokenizer for model 'gpt-17'"):
        con.execute("select token_count('x', 'gpt-17')").fetchall()


def test_read_documents_folder(con, tmp_path):
    docs = tmp_path / "docs" / "sub"
    docs.mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("---\nauthor: me\n---\n# Watering\n\nWater in the morning.\n")
    (docs / "b.html").write_text("<html><head><title>Soil &amp; pH</title></head><body><p>Lime &gt; sand</p></body></html>")
    (docs / "c.txt").write_text("Slugs\n\nCollect them at dusk.")
    (docs / "ignored.pdf").write_bytes(b"%PDF")
    rows = con.execute("select d.path, d.format, d.title, d.text from "
                       "(select unnest(read_documents('docs')) as d) order by 1").fetchall()
    assert rows == [
        ("docs/a.md", "markdown", "Watering", "# Watering\n\nWater in the morning."),
        ("docs/sub/b.html", "html", "Soil & pH", "Lime > sand"),
        ("docs/sub/c.txt", "text", "c", "Slugs\n\nCollect them at dusk."),
    ]
    assert len(one(con, "select read_documents('docs/**/*.txt')")) == 1


def test_read_documents_empty_corpus(con, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(duckdb.Error, match="no .md, .txt or .html files match 'empty'"):
        con.execute("select read_documents('empty')").fetchall()
