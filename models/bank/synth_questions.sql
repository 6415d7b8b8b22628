-- Step 2: new customer questions per seed row, from the teacher (var question_endpoint), as a
-- {reasoning, questions[]} object (macros/prompts.sql), unnested, trimmed, empties and over-long
-- ones dropped, de-duplicated exactly and case/punctuation-insensitively across the whole table.
-- Incremental: only seed rows whose prompt or generation settings are new are sent to the teacher
-- (delete+insert on seed_id replaces that seed's questions); --full-refresh rebuilds from the cache.
{{ config(materialized='incremental', unique_key='seed_id', incremental_strategy='delete+insert') }}
{%- set tag = question_generation_tag() %}

with seeds as (
    select *, md5(prompt || {{ sql_string(tag) }}) as generation_key
    from {{ ref('question_prompts') }}
),

todo as (
    select * from seeds
    {%- if is_incremental() %}
    where generation_key not in (select generation_key from {{ this }})
    {%- endif %}
),

answered as materialized (  -- one ai_query evaluation per row, however often it is referenced
    select todo.*,
           ai_query({{ sql_string(var('question_endpoint')) }}, prompt,
                    responseFormat := {{ question_response_format() }},
                    modelParameters := {{ struct_literal(question_parameters()) }},
                    failOnError := false) as answer
    from todo
),

candidates as (
    {%- if var('include_seed_questions') %}
    -- the hand-written seed question itself (answered and exported too)
    select seed_id, topic, in_scope, seed_question, prompt, generation_key,
           'seed' as origin, 0 as position, seed_question as question, cast(null as varchar) as reasoning
    from answered
    where answer.errorMessage is null
    union all
    {%- endif %}
    select seed_id, topic, in_scope, seed_question, prompt, generation_key,
           'generated' as origin,
           generate_subscripts(answer.result.questions, 1) as position,
           unnest(answer.result.questions) as question,
           answer.result.reasoning as reasoning
    from answered
    where answer.errorMessage is null
),

stripped as (
    -- drop what a model may wrap around a question: leading punctuation and list numbering
    -- ("1. ", "Question 2: ", "- ", ", "), trailing commas
    select * replace (
        regexp_replace(
            regexp_replace(
                regexp_replace(question, '^[\s,.;:!?"''()\[\]{}*#•-]+', ''),
                '^(question\s*\d+\s*[:.)-]?|\d+\s*[.):])\s*', '', 'i'),
            '[\s,;:]+$', '') as question)
    from candidates
),

cleaned as (
    select *,
           trim(regexp_replace(question, '\s+', ' ', 'g')) as question_clean,
           trim(regexp_replace(regexp_replace(lower(question), '[^a-z0-9]+', ' ', 'g'), '\s+', ' ', 'g'))
               as question_norm
    from stripped
),

kept as (
    select *
    from cleaned
    where question_norm <> ''
      and (origin = 'seed' or len(string_split(question_norm, ' '))
               between {{ var('question_min_words') | int }} and {{ var('question_max_words') | int }})
      {%- if is_incremental() %}
      -- already asked by another seed in an earlier run
      and left(md5(question_norm), 16) not in (
          select question_id from {{ this }} where seed_id not in (select seed_id from todo))
      {%- endif %}
    qualify row_number() over (
        partition by question_norm
        order by case origin when 'seed' then 0 else 1 end, seed_id, position) = 1
)

select
    left(md5(question_norm), 16) as question_id,
    seed_id,
    topic,
    in_scope,
    origin,
    position,
    question_clean               as question,
    question_norm,
    reasoning,
    seed_question,
    prompt                       as question_prompt,
    generation_key
from kept
