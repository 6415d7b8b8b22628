-- Lineage of every exported conversation: export line → seed row → the ai_query calls that wrote
-- the question and the answer (cache rows, and the call log with tokens and latency).
--   sqlsynth show "select * from chat_lineage where id = '...'"
{{ config(materialized='view') }}

with calls as (
    select key, count(*) as calls, sum(prompt_tokens) as prompt_tokens,
           sum(completion_tokens) as completion_tokens, max(ts) as last_call_at
    from sqlsynth.calls
    group by key
)
select
    e.id,
    e.split,
    f.seed_id,
    s.topic,
    s.in_scope,
    s.question              as seed_question,
    f.origin,
    f.question_cache_key,
    qc.model                as question_model,
    qc.created_at           as question_cached_at,
    f.response_cache_key,
    rc.model                as response_model,
    rc.created_at           as response_cached_at,
    rc.prompt_tokens + rc.completion_tokens as response_tokens,
    rl.calls                as response_calls_logged
from {{ ref('chat_export') }} as e
join {{ ref('chat_formatted') }} as f on f.conversation_id = e.id
join {{ ref('stg_seed_examples') }} as s on s.seed_id = f.seed_id
left join sqlsynth.cache as qc on qc.key = f.question_cache_key
left join sqlsynth.cache as rc on rc.key = f.response_cache_key
left join calls as rl on rl.key = f.response_cache_key
