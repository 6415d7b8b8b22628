-- synth_responses written in Databricks SQL, as it would run on the vendor platform: `=>` named
-- arguments, named_struct, array, to_json, and from_json with a DDL schema. sqlsynth transpiles it
-- to DuckDB (sqlglot) and ai_query keeps Databricks semantics here (with responseFormat it returns
-- the JSON string). It sends exactly the requests synth_responses sends, so it is answered from the
-- same cache entries and produces the same rows (tests/assert_databricks_responses_match.sql).
{{ config(materialized='table', dialect='databricks') }}
-- Runs after synth_responses (depends_on below), so every request is answered from the cache that
-- model filled: each request is sent once, and not raced for by two models at the same time.
-- depends_on: {{ ref('synth_responses') }}
{%- set params = response_parameters() %}

WITH answered AS (
    SELECT
        p.question_id,
        p.seed_id,
        p.question,
        p.instructions,
        ai_query(
            {{ sql_string(var('response_endpoint')) }},
            array(
                named_struct('role', 'system', 'content', p.instructions),
                named_struct('role', 'user', 'content', p.question)
            ),
            responseFormat => {{ response_format() }},
            modelParameters => {{ named_struct_literal(params) }},
            failOnError => false
        ) AS answer
    FROM {{ ref('response_prompts') }} AS p
),

parsed AS (
    SELECT
        *,
        trim(from_json(answer.result, 'STRUCT<content: STRING>').content) AS response
    FROM answered
    WHERE answer.errorMessage IS NULL
)

SELECT
    question_id,
    seed_id,
    question,
    response,
    array(
        named_struct('role', 'user', 'content', question),
        named_struct('role', 'assistant', 'content', response)
    ) AS messages,
    to_json({{ named_struct_literal(params) }}) AS model_parameters,
    instructions,
    md5(concat(instructions, question, {{ sql_string(response_generation_tag()) }})) AS generation_key
FROM parsed
WHERE response <> ''
