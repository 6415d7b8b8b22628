{#- One split of chat_formatted in TRL's conversational prompt/completion format: every turn before the
    last (system?, user) is the prompt, the final assistant turn the completion. -#}
{% macro prompt_completion_rows(split) -%}
select
    list_slice(messages, 1, len(messages) - 1) as prompt,
    [messages[len(messages)]]                  as completion
from {{ ref('chat_formatted') }}
where split = '{{ split }}'
order by conversation_id
{%- endmacro %}
