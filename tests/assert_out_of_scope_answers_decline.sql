-- Out-of-scope questions must not be answered with a buy/sell recommendation. A cheap keyword
-- screen (the judge is the evaluation step); warn only: the bundled 135M model is not a good teacher.
{{ config(severity='warn') }}
select f.conversation_id, f.topic, f.messages[-1].content as answer
from {{ ref('chat_formatted') }} as f
where not f.in_scope
  and regexp_matches(lower(f.messages[-1].content), '\byou should (buy|sell|invest)\b|\bi recommend (buying|selling|investing)\b')
