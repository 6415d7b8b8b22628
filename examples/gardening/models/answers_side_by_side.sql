-- Grounded vs. plain answers per question, with how much context each grounded prompt carried.
select
    g.question_id,
    g.question,
    g.chunks_retrieved,
    g.chunks_dropped,
    g.context_tokens,
    g.answer as grounded_answer,
    p.answer as plain_answer
from {{ ref('grounded_answers') }} g
join {{ ref('plain_answers') }} p using (question_id)
order by g.question_id
