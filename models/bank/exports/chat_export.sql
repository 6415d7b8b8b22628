-- Step 5: target/exports/chat.jsonl, one {"messages": [...], "split": ..., "id": ...} per line: the
-- chat format of TRL's SFTTrainer and chat fine-tuning APIs (training/ reads it as is; `split` and
-- `id` are extra keys they ignore). chat_train.jsonl / chat_eval.jsonl hold `messages` only.
{{ config(materialized='external', format='jsonl', location='target/exports/chat.jsonl') }}

select messages, split, conversation_id as id
from {{ ref('chat_formatted') }}
order by conversation_id
