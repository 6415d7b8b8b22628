-- The fine-tuning file: one Dolly record per line, what `python -m training.trainer` reads.
{{ config(materialized='external', format='jsonl', location='target/exports/corpus_qa.jsonl') }}
select instruction, context, response, category
from {{ ref('corpus_qa') }}
order by question_id
