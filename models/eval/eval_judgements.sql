-- The judge's verdict on every answer (structured: JudgeVerdict in udfs/eval_verdict.py), cheap
-- deterministic metrics (refusal phrases, length), and the cost side of each answer from the ai_query
-- cache and call log (prompt/completion tokens, latency) — a separate model from eval_answers
-- because the cache rows of a statement are only visible to the statements after it.
{{ eval_config() }}

with answers as (
    select a.*, rules.rules_text
    from {{ ref('eval_answers') }} as a, {{ ref('bank_rules_text') }} as rules
),

judged as materialized (
    select *,
           ai_query({{ sql_string(var('eval_judge_endpoint', 'default')) }},
                    {{ judge_prompt('question', 'in_scope', 'answer', 'rules_text') }},
                    responseFormat := 'JudgeVerdict',
                    modelParameters := {'temperature': 0.0, 'max_tokens': 120},
                    failOnError := false) as verdict
    from answers
    where answer is not null
),

answer_calls as (   -- the cache row that produced each answer: same endpoint, same messages
    select c.key, c.endpoint, c.prompt_tokens, c.completion_tokens,
           json_extract_string(c.request, '$[0].content') as first_message,
           json_extract_string(c.request, '$[#-1].content') as last_message,
           json_array_length(c.request) as n_messages,
           (select min(l.latency_ms) from sqlsynth.calls as l where l.key = c.key and l.error is null) as latency_ms
    from sqlsynth.cache as c
    where c.response_format is null
      and c.endpoint in (select distinct endpoint from answers)
      and json_extract(c.parameters, '$.max_tokens') = {{ var('eval_max_tokens', 80) }}
    qualify row_number() over (partition by c.endpoint, first_message, last_message, n_messages
                               order by c.created_at desc) = 1
)

select j.contestant, j.endpoint, j.prompt_kind, j.question_id, j.question, j.source, j.topic, j.in_scope,
       j.answer,
       regexp_matches(lower(j.answer), {{ refusal_pattern() }})        as refused_by_phrase,
       len(str_split(trim(j.answer), ' '))                              as answer_words,
       j.verdict.result.in_scope_correctly_handled                      as judge_correctly_handled,
       j.verdict.result.refused                                         as judge_refused,
       j.verdict.result.follows_rules                                   as judge_follows_rules,
       j.verdict.result.score                                           as judge_score,
       j.verdict.result.reasoning                                       as judge_reasoning,
       j.verdict.errorMessage                                           as judge_error,
       k.key                                                            as answer_cache_key,
       k.prompt_tokens, k.completion_tokens, k.latency_ms
from judged as j
left join answer_calls as k
       on k.endpoint = j.endpoint and k.first_message = j.first_message and k.last_message = j.last_message
      and k.n_messages = j.n_messages
