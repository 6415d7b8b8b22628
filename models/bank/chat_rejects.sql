-- Generated conversations the quality gates kept out of chat_train/chat_eval, with every reason
-- (response_quality: `reason` is the first gate failed, `reasons` all of them):
--   sqlsynth show chat_rejects
{{ config(materialized='view') }}

select reason, reasons, question_id, seed_id, topic, in_scope, origin, question, response, finish_reason,
       answer_words, round(answer_relevance, 3) as answer_relevance, refused,
       round(max_question_similarity, 3) as max_question_similarity, round(max_ngram_overlap, 3) as max_ngram_overlap,
       closest_earlier_question
from {{ ref('response_quality') }}
where not kept
order by reason, question_id
