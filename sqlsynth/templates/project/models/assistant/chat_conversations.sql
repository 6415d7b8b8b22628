-- The chat format fine-tuning tools read: messages = [system?, user, assistant]; the system turn is
-- var system_prompt (project.yml), left out when empty.
{{ config(materialized='table') }}
{%- set system_prompt = var('system_prompt', '') %}

select
    question_id as id,
    [
        {%- if system_prompt %}
        {'role': 'system', 'content': {{ quoted(system_prompt) }}},
        {%- endif %}
        {'role': 'user', 'content': question},
        {'role': 'assistant', 'content': trim(response.answer)}
    ] as messages
from {{ ref('answers') }}
where trim(coalesce(response.answer, '')) <> ''
