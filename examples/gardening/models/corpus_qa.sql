-- Instruction records (the Dolly format): each question with one answer, the accepted answer
-- preferred, else the best-scored one. Questions without a kept answer are left out.
--
-- What goes into Dolly's `context` is a choice (var dolly_context). In Dolly, `context` is a
-- reference passage the response draws on (category closed_qa); a question's own body is not one.
--   question_body      (default) instruction = title, context = the question's body (the asker's
--                      details), category open_qa: answered from knowledge, not from a passage
--   retrieved_passage  instruction = title + body, context = the var('dolly_context_k') passages the
--                      corpus index returns for the question (RAG-style), category closed_qa
{%- set mapping = var('dolly_context', 'question_body') %}
{%- if mapping not in ('question_body', 'retrieved_passage') %}
{{ exceptions.raise_compiler_error("var dolly_context is '" ~ mapping ~ "'; use question_body or retrieved_passage") }}
{%- endif %}
{%- if mapping == 'retrieved_passage' %}
-- depends_on: {{ ref('corpus_index') }}
{%- endif %}
with questions as (
    select * from {{ ref('corpus_posts') }} where post_type_id = 1
),
answers as (
    select * from {{ ref('corpus_posts') }} where post_type_id = 2
),
paired as (
    select q.post_id as question_id, a.post_id as answer_id, q.title, q.body as question_body,
           coalesce(a.post_id = q.accepted_answer_id, false) as is_accepted, a.body as response
    from questions q
    join answers a on a.parent_id = q.post_id
    qualify row_number() over (
        partition by q.post_id
        order by (a.post_id = q.accepted_answer_id) desc nulls last, a.score desc, a.post_id
    ) = 1
)
select
    question_id,
    answer_id,
    is_accepted,
    {%- if mapping == 'question_body' %}
    title                               as instruction,
    question_body                       as context,
    'open_qa'                           as category,
    {%- else %}
    title || chr(10) || chr(10) || question_body as instruction,
    array_to_string(list_transform(
        retrieve('{{ var("collection") }}', title || chr(10) || question_body, {{ var('dolly_context_k', 1) }}),
        lambda c: c.text), chr(10) || chr(10)) as context,
    'closed_qa'                         as category,
    {%- endif %}
    response
from paired
