-- Step 3's prompt for every question: the bank's rules + the reasoning scaffold
-- (macros/prompts.sql: response_prompt). Shared by synth_responses and synth_responses_databricks.
select
    q.question_id,
    q.seed_id,
    q.question,
    q.in_scope,
    {{ response_prompt('q.question', 'q.in_scope', 'r.rules_text') }} as prompt
from {{ ref('synth_questions') }} as q
cross join {{ ref('bank_rules_text') }} as r
