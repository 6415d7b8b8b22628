-- Step 3: the teacher's answer to every question (var response_endpoint), structured output
-- STRUCT<content: STRING>, temperature/max_tokens from vars. Decoupled from step 2: tune either
-- prompt alone. Incremental: only questions whose prompt or settings are new are sent.
-- synth_responses_databricks.sql is the same model in Databricks SQL.
{{ config(materialized='incremental', unique_key='question_id', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns') }}
{%- set tag = response_generation_tag() %}

with prompts as (
    select *, md5(instructions || question || {{ sql_string(tag) }}) as generation_key
    from {{ ref('response_prompts') }}
),

todo as (
    select * from prompts
    {%- if is_incremental() %}
    where generation_key not in (select generation_key from {{ this }})
    {%- endif %}
),

answered as materialized (  -- one ai_query evaluation per row, however often it is referenced
    select todo.*,
           ai_query({{ sql_string(var('response_endpoint')) }},
                    [{{ chat_message('system', 'instructions') }}, {{ chat_message('user', 'question') }}],
                    responseFormat := {{ response_format() }},
                    modelParameters := {{ struct_literal(response_parameters()) }},
                    failOnError := false) as answer
    from todo
),

responses as (
    select *, trim(answer.result.content) as response, answer.finishReason as finish_reason
    from answered
    where answer.errorMessage is null
)

select
    question_id,
    seed_id,
    question,
    response,
    finish_reason,   -- stop / length (cut at max_tokens): response_quality's `truncated` gate
    {{ chat_messages('question', 'response', system='') }} as messages,
    cast(to_json({{ struct_literal(response_parameters()) }}) as varchar) as model_parameters,
    instructions,
    generation_key
from responses
where response <> ''
