-- Retrieval units: every kept answer split into token windows. The search text is the question
-- title plus the chunk (match question+answer); the chunk alone is what a prompt receives.
with answers as (
    select a.post_id as answer_id, q.post_id as question_id, q.title, a.body,
           chunk_text(a.body, {{ var('chunk_tokens') }}, {{ var('chunk_overlap') }}) as chunks
    from {{ ref('corpus_posts') }} a
    join {{ ref('corpus_posts') }} q on q.post_id = a.parent_id and q.post_type_id = 1
    where a.post_type_id = 2
),
numbered as (
    select answer_id, question_id, title, unnest(chunks) as chunk, generate_subscripts(chunks, 1) as chunk_no
    from answers
)
select
    answer_id || '-' || chunk_no    as chunk_id,
    question_id,
    answer_id,
    chunk_no,
    title || chr(10) || chunk       as search_text,
    chunk
from numbered
