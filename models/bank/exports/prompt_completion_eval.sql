-- The eval split in TRL's conversational prompt/completion format (see prompt_completion_train.sql).
{{ config(materialized='external', format='jsonl', location='target/exports/prompt_completion_eval.jsonl') }}

{{ prompt_completion_rows('eval') }}
