-- Rows per stage and what the LLM calls cost (all runs, from the ai_query call log):
--   sqlsynth show pipeline_summary
{{ config(materialized='view') }}

with calls as (
    select node, count(*) as llm_calls, count(*) filter (where status <> 'ok') as failed_calls,
           sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
           round(sum(latency_ms) / 1000.0, 1) as llm_seconds
    from sqlsynth.calls
    group by node
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
    select 5, 'chat_export', count(*),
           count(*) filter (where split = 'train') || ' train, ' || count(*) filter (where split = 'eval')
               || ' eval → target/exports/chat.jsonl'
    from {{ ref('chat_export') }}
)
select s.step, s.stage, s.n_rows, s.detail,
       coalesce(c.llm_calls, 0) as llm_calls, c.failed_calls, c.prompt_tokens, c.completion_tokens,
       c.llm_seconds
from stages as s
left join calls as c on c.node = s.stage
order by s.step, s.stage
