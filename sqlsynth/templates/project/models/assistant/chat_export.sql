-- target/exports/chat.jsonl: one {"messages": [...]} per line (TRL's SFTTrainer, chat fine-tuning APIs).
{{ config(materialized='external', format='jsonl', location='target/exports/chat.jsonl') }}

select messages
from {{ ref('chat_conversations') }}
order by id
