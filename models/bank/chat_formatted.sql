-- Step 4: one conversation per (question, response): `messages` = optional system turn (var
-- system_prompt) + user + assistant, roles checked at compile time (macros/chat.sql); a
-- deterministic train/eval split; lineage to the seed row and to the ai_query cache rows
-- (sqlsynth.cache.key, also sqlsynth.calls.key) that produced each message. Only the rows that pass
-- the quality gates (response_quality; the others are in chat_rejects).
{{ config(materialized='table') }}

select
    r.question_id                                   as conversation_id,
    {{ chat_messages('r.question', 'g.exported_response') }} as messages,
    {{ split_of('r.question_id') }}                 as split,
    q.seed_id,
    s.topic,
    s.in_scope,
    q.origin,
    g.finish_reason,
    g.answer_source,                                -- teacher / decline_answer (var)
    case when q.origin = 'generated' then   -- the hand-written seed questions had no LLM call
    {{ ai_cache_key(var('question_endpoint'), 'q.question_prompt', question_response_format(),
                    question_parameters()) }} end    as question_cache_key,
    {{ ai_cache_key(var('response_endpoint'), ['r.instructions', 'r.question'], response_format(),
                    response_parameters()) }}        as response_cache_key
from {{ ref('synth_responses') }} as r
join {{ ref('synth_questions') }} as q on q.question_id = r.question_id
join {{ ref('stg_seed_examples') }} as s on s.seed_id = q.seed_id   -- seeds deleted since: gone
join {{ ref('response_quality') }} as g on g.question_id = r.question_id and g.kept
order by conversation_id
