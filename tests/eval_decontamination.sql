-- Fails the evaluation build when the held-out set leaks training data: any exact or normalised
-- duplicate of a training question, or more than decontamination_max_share of the questions over the
-- n-gram overlap threshold (those few are dropped from the answers by eval_answers).
{{ config(enabled=var('run_eval', false), tags=['eval']) }}

with checked as (
    select * from {{ ref('eval_decontamination') }}
),

share as (
    select avg(contaminated::int) as contaminated_share from checked
)

select question_id, question, source, exact_duplicate, normalized_duplicate, max_ngram_overlap,
       closest_training_question, contaminated_share
from checked, share
where exact_duplicate
   or normalized_duplicate
   or (contaminated and contaminated_share > {{ var('decontamination_max_share', 0.1) }})
