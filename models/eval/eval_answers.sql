-- Every contestant answers every held-out question (var eval_contestants: name, endpoint, prompt).
-- Greedy decoding, so a re-run is answered from the cache. Downstream of eval_decontamination: the
-- few contaminated questions are left out, and a leaking held-out set stops the evaluation (its test)
-- before anything is paid for.
{{ eval_config() }}
{%- set contestants = var('eval_contestants', [
    {'name': 'base_no_rules', 'endpoint': var('eval_base_endpoint', 'default'), 'prompt': 'plain'},
    {'name': 'base_with_rules', 'endpoint': var('eval_base_endpoint', 'default'), 'prompt': 'rules'},
    {'name': 'finetuned_no_rules', 'endpoint': var('eval_student_endpoint', 'student'), 'prompt': 'plain'},
    {'name': 'teacher', 'endpoint': var('response_endpoint'), 'prompt': 'teacher'},
]) %}

with questions as (
    select q.*
    from {{ ref('eval_questions') }} as q
    join {{ ref('eval_decontamination') }} as d using (question_id)
    where not d.contaminated
),

rules as (
    select rules_text from {{ ref('bank_rules_text') }}
),

requests as (
    {%- for c in contestants %}
    select {{ sql_string(c.name) }} as contestant, {{ sql_string(c.endpoint) }} as endpoint,
           {{ sql_string(c.prompt) }} as prompt_kind, q.question_id, q.question, q.source, q.topic, q.in_scope,
           {{ eval_request(c.prompt, 'q.question', 'q.in_scope', 'rules.rules_text') }} as request
    from questions as q, rules
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

answered as materialized (
    select *,
           ai_query(endpoint, request,
                    modelParameters := {'temperature': 0.0, 'max_tokens': {{ var('eval_max_tokens', 80) }}},
                    failOnError := false) as answer
    from requests
)

select contestant, endpoint, prompt_kind, question_id, question, source, topic, in_scope,
       request[1].content as first_message,
       request[-1].content as last_message,
       len(request) as n_messages,
       trim(answer.result) as answer,
       answer.errorMessage as error
from answered
