-- The train split alone, `messages` only (for APIs that reject extra keys).
{{ config(materialized='external', format='jsonl', location='target/exports/chat_train.jsonl') }}

select messages
from {{ ref('chat_formatted') }}
where split = 'train'
order by conversation_id
