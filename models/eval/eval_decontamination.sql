-- Decontamination: each held-out question against every user turn of the training JSONL
-- (target/exports/chat_train.jsonl, read back through chat_train): exact and normalised duplicates,
-- and the largest share of the question's word trigrams found in one training question.
-- A question over var decontamination_max_overlap is `contaminated` and left out of the answers;
-- tests/eval_decontamination.sql fails the build on any exact/normalised duplicate (a split leak) or
-- when more than var decontamination_max_share of the held-out set is contaminated.
{{ eval_config() }}

with held_out as (
    select question_id, question, source, {{ normalized('question') }} as norm
    from {{ ref('eval_questions') }}
),

held_out_grams as (
    select *, {{ word_ngrams('norm') }} as grams from held_out
),

training as (
    select distinct m.content as question
    from (select unnest(messages) as m from {{ ref('chat_train') }})
    where m.role = 'user'
),

training_grams as (
    select question, {{ normalized('question') }} as norm, {{ word_ngrams(normalized('question')) }} as grams
    from training
),

pairs as (
    select h.question_id, h.question, h.source, t.question as training_question,
           h.question = t.question as exact,
           h.norm = t.norm as normalised,
           case when len(h.grams) = 0 then 0.0
                else len(list_intersect(h.grams, t.grams)) / len(h.grams) end as overlap
    from held_out_grams as h
    cross join training_grams as t
)

select question_id,
       any_value(question)                               as question,
       any_value(source)                                 as source,
       coalesce(bool_or(exact), false)                   as exact_duplicate,
       coalesce(bool_or(normalised), false)              as normalized_duplicate,
       coalesce(max(overlap), 0.0)                       as max_ngram_overlap,
       arg_max(training_question, overlap)               as closest_training_question,
       coalesce(bool_or(exact) or bool_or(normalised)
                or max(overlap) > {{ var('decontamination_max_overlap', 0.8) }}, false) as contaminated
from pairs
group by question_id
union all by name
-- held-out questions when the training file is empty (no pairs at all)
select question_id, question, source, false as exact_duplicate, false as normalized_duplicate,
       0.0 as max_ngram_overlap, null as closest_training_question, false as contaminated
from held_out
where not exists (select 1 from training)
