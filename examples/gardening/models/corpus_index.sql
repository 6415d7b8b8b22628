-- The vector index: search_text is embedded (all-MiniLM-L6-v2, bundled), chunk is returned.
-- Re-runs embed only new or changed chunks.
{{ config(materialized='vector_index', collection=var('collection'), id_column='chunk_id',
          search_column='search_text', return_column='chunk',
          metadata_columns=['question_id', 'answer_id'], embedding_model='all-minilm-l6-v2') }}
select chunk_id, question_id, answer_id, search_text, chunk
from {{ ref('corpus_chunks') }}
