-- Instruction records (the Dolly format): each question with one answer, the accepted answer
-- preferred, else the best-scored one. Questions without a kept answer are left out.
with questions as (
    select * from {{ ref('corpus_posts') }} where post_type_id = 1
),
answers as (
    select * from {{ ref('corpus_posts') }} where post_type_id = 2
)
select
    q.post_id                           as question_id,
    a.post_id                           as answer_id,
    coalesce(a.post_id = q.accepted_answer_id, false) as is_accepted,
    q.title                             as instruction,
    q.body                              as context,
    a.body                              as response,
    'closed_qa'                         as category
from questions q
join answers a on a.parent_id = q.post_id
qualify row_number() over (
    partition by q.post_id
    order by (a.post_id = q.accepted_answer_id) desc nulls last, a.score desc, a.post_id
) = 1
