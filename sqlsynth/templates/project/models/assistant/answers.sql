-- One answer per customer question from an LLM: ai_query(endpoint, prompt, responseFormat := ...)
-- returns a typed STRUCT (here {answer}), cached per row in the database, so a re-run calls nothing.
{{ config(materialized='table') }}

select
    q.question_id,
    q.topic,
    q.question,
    ai_query('default',
             'You work at a bank. Answer the customer in one or two sentences. Question: ' || q.question,
             responseFormat := 'STRUCT<answer: STRING>') as response
from {{ ref('customer_questions') }} as q
