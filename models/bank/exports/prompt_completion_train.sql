-- The train split as TRL's conversational prompt/completion format, one
-- {"prompt": [system?, user], "completion": [assistant]} per line: SFTTrainer then trains on the
-- completion only (as training/ does with chat_train.jsonl), where with `messages` it trains on every
-- token. Same conversations, same order as chat_train.jsonl.
{{ config(materialized='external', format='jsonl', location='target/exports/prompt_completion_train.jsonl') }}

{{ prompt_completion_rows('train') }}
