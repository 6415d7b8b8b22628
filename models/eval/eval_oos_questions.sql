-- Out-of-scope questions for the held-out set: the question teacher writes new ones per out-of-scope
-- seed topic, and any that repeat a training question (normalised) are dropped here already.
{{ eval_config() }}

with topics as (
    select topic, string_agg(question, ' | ' order by seed_id) as examples
    from {{ ref('stg_seed_examples') }}
    where not in_scope
    group by topic
),

asked as materialized (
    select topic,
           ai_query({{ sql_string(var('eval_question_endpoint', var('question_endpoint'))) }},
                    'Write ' || {{ var('eval_oos_per_topic', 3) }} || ' new, short questions that a bank customer might ask about '
                    || replace(topic, '_', ' ') || '. Examples: ' || examples
                    || '. Do not repeat the examples. Reply with JSON: {"questions": [...]}',
                    responseFormat := 'STRUCT<questions: ARRAY<STRING>>',
                    modelParameters := {'temperature': 0.9, 'max_tokens': 80, 'seed': 7}) as answer
    from topics
),

questions as (
    select topic, trim(q.question) as question, q.position
    from asked, unnest(answer.questions) with ordinality as q(question, position)
),

training as (
    select distinct {{ normalized('question') }} as norm from {{ ref('synth_questions') }}
)

select md5('oos|' || question) as question_id, question, topic
from questions
where question <> ''
  and {{ normalized('question') }} not in (select norm from training)
qualify row_number() over (partition by {{ normalized('question') }} order by topic, position) = 1
    and row_number() over (partition by topic order by position) <= {{ var('eval_oos_per_topic', 3) }}
