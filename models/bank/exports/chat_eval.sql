-- The eval split alone, `messages` only (var eval_fraction of the conversations).
{{ config(materialized='external', format='jsonl', location='target/exports/chat_eval.jsonl') }}

select messages
from {{ ref('chat_formatted') }}
where split = 'eval'
order by conversation_id
