-- The held-out set: questions of the eval split (never trained on), a fixed sample of real customer
-- questions from banking77 (all in scope), the project's own held-out out-of-scope questions and
-- out-of-scope questions generated for evaluation. Sized so that in-scope and out-of-scope rates each
-- have n >= 30 (eval_banking77_n 30; eval_shipped_oos_n 32, which alone reaches 30 when the teacher
-- writes no usable out-of-scope question, as the bundled 135M model does, + eval_oos_per_topic 3 x 6); a
-- source that yields 0 rows is a warning naming its var (schema.yml, has_rows).
{{ eval_config() }}

with eval_split as (
    select c.conversation_id as question_id, r.question, 'eval_split' as source, c.topic, c.in_scope
    from {{ ref('chat_formatted') }} as c
    join {{ ref('synth_responses') }} as r on r.question_id = c.conversation_id
    where c.split = 'eval'
    order by md5({{ sql_string(var('eval_sample_salt', 'eval_v1')) }} || c.conversation_id)
    limit {{ var('eval_split_n', 12) }}
),

real_customers as (
    {%- if var('eval_real_questions', 'banking77') == 'shipped' %}
    -- no banking77 (make eval decides): the in-scope customer questions written for this project's eval
    select md5('heldout|' || question) as question_id, question, 'shipped_heldout' as source,
           topic, true as in_scope
    from {{ ref('eval_heldout_questions') }}
    where in_scope = 'yes'
    order by md5({{ sql_string(var('eval_sample_salt', 'eval_v1')) }} || question)
    {%- else %}
    select md5('banking77|' || text) as question_id, text as question, 'banking77' as source,
           category as topic, true as in_scope
    from {{ source('banking77', 'test') }}
    order by md5({{ sql_string(var('eval_sample_salt', 'eval_v1')) }} || text)
    {%- endif %}
    limit {{ var('eval_banking77_n', 30) }}
),

shipped_out_of_scope as (   -- written for this project's eval; banking77 has no out-of-scope questions
    select md5('heldout|' || question) as question_id, question, 'shipped_heldout' as source,
           topic, false as in_scope
    from {{ ref('eval_heldout_questions') }}
    where in_scope = 'no'
    order by md5({{ sql_string(var('eval_sample_salt', 'eval_v1')) }} || question)
    limit {{ var('eval_shipped_oos_n', 32) }}
),

generated_out_of_scope as (
    select question_id, question, 'generated_oos' as source, topic, false as in_scope
    from {{ ref('eval_oos_questions') }}
)

select * from eval_split
union all by name
select * from real_customers
union all by name
select * from shipped_out_of_scope
union all by name
select * from generated_out_of_scope
