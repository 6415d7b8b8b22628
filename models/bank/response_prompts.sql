-- Step 3's request per question: a system message with the bank's rules and the reasoning scaffold
-- (macros/prompts.sql: response_instructions), then the question as the user message.
-- Shared by synth_responses and synth_responses_databricks.
select
    q.question_id,
    q.seed_id,
    q.question,
    q.in_scope,
    {{ response_instructions('q.in_scope', 'r.rules_text') }} as instructions
from {{ ref('synth_questions') }} as q
cross join {{ ref('bank_rules_text') }} as r
