-- Fails the evaluation build when a held-out question was (nearly) trained on.
{{ config(enabled=var('run_eval', false), tags=['eval']) }}

select question_id, question, source, exact_duplicate, normalized_duplicate, max_ngram_overlap,
       closest_training_question
from {{ ref('eval_decontamination') }}
where exact_duplicate
   or normalized_duplicate
   or max_ngram_overlap > {{ var('decontamination_max_overlap', 0.8) }}
