-- A plain folder of documents (.md, .txt, .html: HTML is turned into text) as a second corpus.
with documents as (
    select unnest(read_documents('docs'), recursive := true)
),
chunked as (
    select path, title, chunk_text(text, {{ var('chunk_tokens') }}, {{ var('chunk_overlap') }}) as chunks
    from documents
)
select path || '#' || chunk_no as chunk_id, path, title, chunk_no, chunk
from (select path, title, unnest(chunks) as chunk, generate_subscripts(chunks, 1) as chunk_no from chunked)
