-- A few held-out questions (in and out of scope) with every contestant's answer, for the report.
{{ eval_config() }}

with picked as (
    select question_id
    from (select distinct question_id, in_scope from {{ ref('eval_answers') }})
    qualify row_number() over (partition by in_scope order by question_id) <= {{ var('eval_examples_per_kind', 3) }}
)

select a.question, a.contestant, a.answer, a.in_scope, a.source
from {{ ref('eval_answers') }} as a
join picked using (question_id)
order by a.in_scope desc, a.question, a.contestant
