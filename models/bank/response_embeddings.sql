-- MiniLM vectors (embed(): all-MiniLM-L6-v2, normalised) of every question and answer, for the
-- quality gates. Incremental: only new or changed (question, answer) pairs are embedded, so an
-- unchanged re-run does not load the embedding model.
{{ config(materialized='incremental', unique_key='question_id', incremental_strategy='delete+insert') }}

with todo as (
    select question_id, question, response, md5(question || chr(10) || response) as text_key
    from {{ ref('synth_responses') }}
    {%- if is_incremental() %}
    where md5(question || chr(10) || response) not in (select text_key from {{ this }})
    {%- endif %}
)

select question_id, text_key, embed(question) as question_vector, embed(response) as answer_vector
from todo
