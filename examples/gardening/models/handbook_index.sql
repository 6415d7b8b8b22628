-- The handbook folder as its own collection: search and return the chunk itself.
{{ config(materialized='vector_index', collection='handbook', id_column='chunk_id',
          search_column='chunk', metadata_columns=['path', 'title']) }}
select chunk_id, path, title, chunk from {{ ref('handbook_chunks') }}
