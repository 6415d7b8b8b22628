-- Quality gates over every generated conversation (issue 14 §3): per row the signals and the list of
-- gates it fails (empty = kept). chat_formatted exports only kept rows (exported_response); chat_rejects
-- keeps the rest with their reasons. Thresholds are vars (project.yml "quality gates"); quality_gates: false computes
-- the signals but keeps every row.
{{ config(materialized='table') }}

with conversations as materialized (
    select r.question_id, r.seed_id, q.topic, q.in_scope, q.origin, r.question, r.response,
           r.finish_reason,
           {{ normalized('r.question') }}                                      as question_norm,
           len(string_split(trim(regexp_replace(r.response, '\s+', ' ', 'g')), ' ')) as answer_words,
           e.question_vector,
           e.answer_vector,
           row_number() over (order by case q.origin when 'seed' then 0 else 1 end, r.seed_id, r.question_id)
                                                                               as rank
    from {{ ref('synth_responses') }} as r
    join {{ ref('synth_questions') }} as q on q.question_id = r.question_id
    join {{ ref('response_embeddings') }} as e on e.question_id = r.question_id
),

grams as (
    select question_id, rank, question, question_vector, {{ word_ngrams('question_norm') }} as grams
    from conversations
),

-- each question against every question ranked before it (seed questions first): a later near-copy
-- is the one rejected
nearest_earlier as (
    select later.question_id,
           max(list_cosine_similarity(later.question_vector, earlier.question_vector)) as max_question_similarity,
           max({{ ngram_containment('later.grams', 'earlier.grams') }})                 as max_ngram_overlap,
           arg_max(earlier.question, list_cosine_similarity(later.question_vector, earlier.question_vector))
                                                                                        as closest_earlier_question
    from grams as later
    join grams as earlier on earlier.rank < later.rank
    group by later.question_id
),

signals as (
    select c.* exclude (question_vector, answer_vector, rank),
           list_cosine_similarity(c.question_vector, c.answer_vector)  as answer_relevance,
           regexp_matches(lower(c.response), {{ refusal_pattern() }})   as refused,
           coalesce(n.max_question_similarity, 0.0)                     as max_question_similarity,
           coalesce(n.max_ngram_overlap, 0.0)                           as max_ngram_overlap,
           n.closest_earlier_question
    from conversations as c
    left join nearest_earlier as n using (question_id)
),

gated as (
    select *,
           {{ failed_gates({
               'truncated': "finish_reason = 'length'",
               'empty': "trim(question) = '' or trim(response) = ''",
               'too_short': "answer_words < " ~ (var('quality_min_answer_words') | int),
               'echoes_instructions': "regexp_matches(lower(response), 'this question is (in scope|out of scope)')",
               'not_a_question': "origin = 'generated' and not " ~ looks_like_question('question'),
               'duplicate_text': "max_ngram_overlap >= " ~ var('quality_max_ngram_overlap'),
               'duplicate_meaning': "max_question_similarity >= " ~ var('quality_max_question_similarity'),
               'out_of_scope_not_declined': "not in_scope and not refused and " ~ var('quality_require_refusal'),
               'in_scope_refused': "in_scope and refused and " ~ var('quality_require_refusal'),
               'irrelevant_answer': "in_scope and answer_relevance < " ~ var('quality_min_relevance'),
           }) }} as reasons
    from signals
)

-- An out-of-scope question that is fine itself but got a bad answer (the bundled 135M model never
-- declines) is kept with the bank's standard decline (var decline_answer; '' = reject it instead).
{%- set question_gates = ['empty', 'not_a_question', 'duplicate_text', 'duplicate_meaning'] %}
, decided as (
    select *,
           reasons[1] as reason,
           not in_scope and len(reasons) > 0 and {{ decline_answer() }} <> ''
               and not list_has_any(reasons, {{ question_gates }}) as declined_by_template
    from gated
)

select * exclude (declined_by_template),
       case when declined_by_template and {{ var('quality_gates') }} then 'decline_answer' else 'teacher' end
                                                                         as answer_source,
       case when answer_source = 'decline_answer' then {{ decline_answer() }}
            else response end                                            as exported_response,
       len(reasons) = 0 or answer_source = 'decline_answer' or not {{ var('quality_gates') }} as kept
from decided
