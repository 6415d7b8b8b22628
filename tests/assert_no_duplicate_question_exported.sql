-- No question is exported twice (case, punctuation and spacing ignored), in either split.
select {{ normalized('m.content') }} as question, count(*) as n, list(e.id) as ids
from {{ ref('chat_export') }} as e, unnest(e.messages) as t(m)
where m.role = 'user'
group by all
having count(*) > 1
