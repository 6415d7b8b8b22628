-- Rows per stage, rows kept/rejected by the quality gates per reason, and what the LLM calls cost
-- (all runs, from the ai_query call log):
--   sqlsynth show pipeline_summary
-- synth_responses and synth_responses_databricks send the same requests, so only one of them pays;
-- answered_by names, for each response row, the model whose call produced its answer.
{{ config(materialized='view') }}

with calls as (
    select node, count(*) as llm_calls, count(*) filter (where status <> 'ok') as failed_calls,
           sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
           round(sum(latency_ms) / 1000.0, 1) as llm_seconds
    from sqlsynth.calls
    group by node
),
paid as (  -- the model whose (first) successful call produced each cached answer
    select key, arg_min(node, ts) as paid_by from sqlsynth.calls where status = 'ok' group by key
),
{%- set response_key = ai_cache_key(var('response_endpoint'), ['r.instructions', 'r.question'],
                                    response_format(), response_parameters()) %}
response_rows as (
    select 'synth_responses' as stage, {{ response_key }} as key from {{ ref('synth_responses') }} as r
    union all
    select 'synth_responses_databricks', {{ response_key }} from {{ ref('synth_responses_databricks') }} as r
),
attribution as (
    select stage, string_agg(n || ' by ' || paid_by, ', ' order by n desc, paid_by) as answered_by
    from (select stage, coalesce(p.paid_by, '(no call logged)') as paid_by, count(*) as n
          from response_rows left join paid as p using (key) group by all)
    group by stage
),
stages as (
    select 1 as step, 'seed_examples' as stage, count(*) as n_rows,
           count(*) filter (where in_scope) || ' in scope, ' || count(*) filter (where not in_scope)
               || ' out of scope' as detail
    from {{ ref('stg_seed_examples') }}
    union all
    select 2, 'synth_questions', count(*),
           count(*) filter (where origin = 'generated') || ' generated, '
               || count(*) filter (where origin = 'seed') || ' seed questions'
    from {{ ref('synth_questions') }}
    union all
    select 3, 'synth_responses', count(*), count(distinct seed_id) || ' seeds'
    from {{ ref('synth_responses') }}
    union all
    select 3, 'synth_responses_databricks', count(*), 'same rows, Databricks SQL'
    from {{ ref('synth_responses_databricks') }}
    union all
    select 4, 'response_quality', count(*) filter (where kept),
           count(*) filter (where kept) || ' kept (' || count(*) filter (where answer_source = 'decline_answer')
               || ' out of scope with var decline_answer), ' || count(*) filter (where not kept)
               || ' rejected (sqlsynth show chat_rejects)'
    from {{ ref('response_quality') }}
    union all
    -- one row per reason (the first gate a row failed), with an example
    select 4, 'response_quality: rejected ' || reason, count(*),
           'e.g. ' || left(arg_min(question || ' → ' || response, question_id), 60)
    from {{ ref('response_quality') }}
    where not kept
    group by reason
    union all
    select 5, 'chat_export', count(*),
           count(*) filter (where split = 'train') || ' train, ' || count(*) filter (where split = 'eval')
               || ' eval → target/exports/chat.jsonl'
    from {{ ref('chat_export') }}
)
select s.step, s.stage, s.n_rows, s.detail,
       coalesce(c.llm_calls, 0) as llm_calls, c.failed_calls, c.prompt_tokens, c.completion_tokens,
       c.llm_seconds, a.answered_by
from stages as s
left join calls as c on c.node = s.stage
left join attribution as a on a.stage = s.stage
order by s.step, s.stage
