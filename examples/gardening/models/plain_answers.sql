-- The same questions and generation settings without any retrieved context, for comparison.
select
    question_id,
    question,
    'Answer the question: ' || question as prompt,
    ai_query('{{ var("answer_endpoint") }}', 'Answer the question: ' || question,
             modelParameters := {{ generation_parameters() }}) as answer
from {{ ref('held_out_questions') }}
