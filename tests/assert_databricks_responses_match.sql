-- The Databricks-SQL version of the responses step produces the same rows as the DuckDB one
-- (for the questions of the current run; synth_responses is incremental, the other a table).
with duck as (
    select question_id, seed_id, question, response, messages, model_parameters, instructions, generation_key
    from {{ ref('synth_responses') }}
    where question_id in (select question_id from {{ ref('response_prompts') }})
),
databricks as (
    select question_id, seed_id, question, response, messages, model_parameters, instructions, generation_key
    from {{ ref('synth_responses_databricks') }}
)
(select 'only in synth_responses' as side, * from (select * from duck except select * from databricks))
union all
(select 'only in synth_responses_databricks' as side, * from (select * from databricks except select * from duck))
