-- The eval split in TRL's conversational prompt/completion format (see prompt_completion_train.sql).
{{ config(materialized='external', format='jsonl', location='target/exports/prompt_completion_eval.jsonl') }}

select
    list_slice(messages, 1, len(messages) - 1) as prompt,
    [messages[len(messages)]]                  as completion
from {{ ref('chat_formatted') }}
where split = 'eval'
order by conversation_id
