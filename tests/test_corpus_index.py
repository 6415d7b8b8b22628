"""The vector_index materialization and the retrieval functions: incremental sync, bad config, bad calls."""

import math

import pytest

from sqlsynth.api import Options, show
from sqlsynth.errors import SqlsynthError

from helpers import build, statuses

DOCS = """id,question,answer,topic
1,How often should I water tomatoes in pots?,Water potted tomatoes deeply once a day in summer.,watering
2,When do I prune roses?,Prune roses in late winter when the buds swell.,pruning
3,How do I get rid of aphids?,Spray aphids off with water and attract ladybirds.,pests
4,What soil do blueberries need?,Blueberries need acidic soil with a pH of 4.5 to 5.5.,soil
"""
INDEX = """{{ config(materialized='vector_index', collection='faq', id_column='id', search_column='question',
          return_column='answer', metadata_columns=['topic']) }}
select * from {{ ref('docs') }}
"""


@pytest.fixture
def faq(make_project):
    return make_project({"seeds/docs.csv": DOCS, "models/faq_index.sql": INDEX}, name="faq")


def sql(root, text, limit=100):
    return show(Options(project_dir=root), text, limit)[1]


def test_index_and_retrieve_search_question_return_answer(faq):
    report = build(faq)
    assert report.success, [r.message for r in report.results]
    message = next(r.message for r in report.results if r.name == "faq_index")
    assert "4 indexed, 4 embedded, 0 unchanged → collection 'faq'" in message
    hits = sql(faq, "select retrieve('faq', 'my tomato plants in containers are thirsty', 2)")[0][0]
    assert [h["id"] for h in hits][0] == "1"
    assert hits[0]["text"] == "Water potted tomatoes deeply once a day in summer."  # the return column
    assert len(hits) == 2 and 0 <= hits[0]["distance"] < hits[1]["distance"]
    # the model is also a plain table
    assert sql(faq, "select count(*) from faq_index") == [(4,)]
    # k larger than the collection: everything, most similar first
    assert len(sql(faq, "select retrieve('faq', 'roses', 10)")[0][0]) == 4
    assert sql(faq, "select retrieve('faq', NULL, 2)") == [(None,)]


def test_rebuild_embeds_only_new_or_changed_rows_and_removes_stale_ones(faq):
    assert build(faq).success
    again = build(faq, "run")
    assert "4 indexed, 0 embedded, 4 unchanged" in again.results[0].message
    seeds = faq / "seeds" / "docs.csv"
    lines = seeds.read_text().splitlines()
    lines[2] = "2,When do I prune roses?,Prune roses in early spring.,pruning"  # changed answer
    del lines[4]  # id 4 is gone
    lines.append("5,Can I compost citrus peel?,Yes; chop it small.,compost")
    seeds.write_text("\n".join(lines) + "\n")
    report = build(faq)
    message = next(r.message for r in report.results if r.name == "faq_index")
    assert "4 indexed, 2 embedded, 2 unchanged, 1 removed" in message
    hits = sql(faq, "select retrieve('faq', 'prune roses', 1)")[0][0]
    assert hits[0]["text"] == "Prune roses in early spring."
    assert "4" not in [h["id"] for h in sql(faq, "select retrieve('faq', 'blueberry soil', 4)")[0][0]]


def test_full_refresh_and_model_change_re_embed_everything(faq):
    assert build(faq).success
    report = build(faq, "run", full_refresh=True)
    assert "4 embedded, 0 unchanged" in report.results[0].message


def test_embed_returns_normalised_vectors(faq):
    vector = sql(faq, "select embed('tomatoes')")[0][0]
    assert len(vector) == 384 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-3)
    similar, unrelated = sql(faq, "select list_cosine_similarity(embed('watering tomatoes'), embed('tomato irrigation')),"
                                  " list_cosine_similarity(embed('watering tomatoes'), embed('tax returns'))")[0]
    assert similar > unrelated


def test_unknown_collection_names_the_known_ones(faq):
    assert build(faq).success
    with pytest.raises(SqlsynthError) as info:
        sql(faq, "select retrieve('fqa', 'roses', 2)")
    text = str(info.value)
    assert "collection 'fqa' does not exist (known collections: faq)" in text and "did you mean 'faq'?" in text


def test_retrieve_before_any_index_was_built(make_project):
    root = make_project({})
    with pytest.raises(SqlsynthError, match="no collection has been built yet"):
        sql(root, "select retrieve('faq', 'roses', 2)")


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(faq, k):
    assert build(faq).success
    with pytest.raises(SqlsynthError, match=rf"retrieve: k must be > 0 \(got {k}\)"):
        sql(faq, f"select retrieve('faq', 'roses', {k})")


def test_trim_context_drops_the_least_similar_chunks_and_counts_them(faq):
    chunks = ("[{'id': 'far', 'text': 'a b c d e f g h i j', 'distance': 0.9}, "
              "{'id': 'near', 'text': 'a b c d e', 'distance': 0.1}, "
              "{'id': 'mid', 'text': 'a b c d e', 'distance': 0.5}]")
    fit = sql(faq, f"select trim_context({chunks}, 13, 'all-minilm-l6-v2')")[0][0]
    assert [c["id"] for c in fit["chunks"]] == ["near", "mid"]
    assert fit["dropped"] == 1 and fit["tokens"] == 12  # 5 + 2 (separator) + 5
    nothing = sql(faq, f"select trim_context({chunks}, 0, 'all-minilm-l6-v2')")[0][0]
    assert nothing["chunks"] == [] and nothing["dropped"] == 3


def test_context_window_from_config_or_model(make_project):
    root = make_project({"project.yml": """
        name: cw
        endpoints:
          remote: {provider: openai, base_url: "http://127.0.0.1:9/v1", model: m, context_window: 2048}
          bare: {provider: openai, base_url: "http://127.0.0.1:9/v1", model: m}
        """})
    assert sql(root, "select context_window('remote'), context_window('default')") == [(2048, 8192)]
    with pytest.raises(SqlsynthError, match="set context_window: under endpoints: bare:"):
        sql(root, "select context_window('bare')")


@pytest.mark.parametrize("config, message", [
    ("id_column='id', return_column='answer'", "vector_index needs search_column"),
    ("id_column='id', search_column='questoin'", "search_column 'questoin' is not a column of the model"),
    ("id_column='key', search_column='question'", "id_column 'key' is not a column"),
    ("search_column='question', metadata_columns=['nope']", "metadata_columns names 'nope'"),
    ("search_column='question', collection='a'", "'a' is not a valid collection name"),
    ("search_column='question', embedding_model='models/mpnet'", "embedding model 'models/mpnet' not found"),
])
def test_bad_index_config(make_project, config, message):
    root = make_project({"seeds/docs.csv": DOCS, "models/idx.sql":
                         f"{{{{ config(materialized='vector_index', {config}) }}}}\nselect * from {{{{ ref('docs') }}}}"})
    report = build(root)
    result = next(r for r in report.results if r.name == "idx")
    assert result.status == "error" and message in result.message and "models/idx.sql" in result.message


def test_duplicate_or_null_ids(make_project):
    root = make_project({"seeds/docs.csv": DOCS, "models/idx.sql":
                         "{{ config(materialized='vector_index', search_column='question') }}\n"
                         "select 1 as id, question from {{ ref('docs') }}"})
    message = next(r.message for r in build(root).results if r.name == "idx")
    assert "id_column 'id' is not unique: '1' appears more than once" in message


def test_empty_corpus_is_an_error(make_project):
    root = make_project({"seeds/docs.csv": DOCS, "models/idx.sql":
                         "{{ config(materialized='vector_index', search_column='question') }}\n"
                         "select * from {{ ref('docs') }} where id > 100"})
    report = build(root)
    assert statuses(report)["idx"] == "error"
    assert "nothing to index: the model returned 0 rows" in next(r.message for r in report.results if r.name == "idx")


def test_a_failing_index_build_keeps_the_previous_table_and_collection(faq):
    assert build(faq).success
    (faq / "models" / "faq_index.sql").write_text(INDEX + "where id > 100\n")
    report = build(faq, "run")
    assert not report.success and "nothing to index" in report.results[0].message
    assert sql(faq, "select count(*) from faq_index") == [(4,)]
    assert len(sql(faq, "select retrieve('faq', 'roses', 10)")[0][0]) == 4


def test_any_sentence_transformers_directory_and_a_model_change_rebuilds(faq):
    from sqlsynth.corpus.models import embedding_model_dir

    assert build(faq).success
    local = faq / "models_dir" / "my-minilm"
    for item in embedding_model_dir(None).rglob("*"):  # a "different" model dir: links to the bundled files
        target = local / item.relative_to(embedding_model_dir(None))
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(item)
    (faq / "models" / "faq_index.sql").write_text(
        INDEX.replace("metadata_columns=['topic']", "metadata_columns=['topic'], embedding_model='models_dir/my-minilm'"))
    report = build(faq, "run")
    assert "4 indexed, 4 embedded, 0 unchanged" in report.results[0].message  # new model: everything again
    assert sql(faq, "select retrieve('faq', 'aphids', 1)")[0][0][0]["id"] == "3"
