-- Step 2's prompt for every seed row (macros/prompts.sql: question_prompt). Inspect before paying:
--   sqlsynth show "select prompt from question_prompts limit 1"
select
    seed_id,
    topic,
    question as seed_question,
    in_scope,
    {{ question_prompt('topic', 'question', 'in_scope') }} as prompt
from {{ ref('stg_seed_examples') }}
