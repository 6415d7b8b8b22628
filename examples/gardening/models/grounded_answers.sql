-- Retrieval-grounded answers: the k chunks most similar to each held-out question go into the
-- prompt ("Knowing this context ... Answer the question ..."). When the prompt would not fit the
-- endpoint's context window, the least similar chunks are dropped (chunks_dropped counts them).
-- depends_on: {{ ref('corpus_index') }}
{% set endpoint = var('answer_endpoint') %}
{% set tokenizer = var('tokenizer') or endpoint %}
{% set window = var('context_window') %}
with retrieved as (
    select question_id, question, retrieve('{{ var("collection") }}', question, {{ var('k') }}) as chunks
    from {{ ref('held_out_questions') }}
),
budgeted as (
    select *,
        ({% if window %}{{ window }}{% else %}context_window('{{ endpoint }}'){% endif %}
         - {{ var('max_new_tokens') }} - {{ var('prompt_overhead_tokens') }}
         - token_count(question, '{{ tokenizer }}'))::integer as context_budget
    from retrieved
),
fitted as (
    select *, trim_context(chunks, context_budget, '{{ tokenizer }}') as fit from budgeted
),
prompts as (
    select
        question_id,
        question,
        len(chunks)                                   as chunks_retrieved,
        fit.dropped                                   as chunks_dropped,
        fit.tokens                                    as context_tokens,
        list_transform(fit.chunks, c -> c.id)         as chunk_ids,
        list_transform(fit.chunks, c -> round(1 - c.distance, 3)) as similarities,
        'Knowing this context:' || chr(10)
            || array_to_string(list_transform(fit.chunks, c -> c.text), chr(10) || chr(10))
            || chr(10) || chr(10) || 'Answer the question: ' || question as prompt
    from fitted
)
select *, ai_query('{{ endpoint }}', prompt, modelParameters := {{ generation_parameters() }}) as answer
from prompts
