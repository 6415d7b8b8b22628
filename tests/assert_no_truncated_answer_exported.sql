-- No exported conversation ends with an answer the model cut off at max_tokens (finish reason
-- "length"): the quality gates (response_quality) keep them out of chat.jsonl / chat_train / chat_eval.
select e.id, q.finish_reason, e.messages[-1].content as answer
from {{ ref('chat_export') }} as e
join {{ ref('response_quality') }} as q on q.question_id = e.id
where q.finish_reason = 'length' and q.answer_source = 'teacher'
