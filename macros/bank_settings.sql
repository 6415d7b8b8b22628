{#- Settings macros that return values (lists, dicts) instead of text, through {{ return(...) }}:
    the chat roles and the modelParameters of both LLM steps. -#}

{#- The chat roles a training conversation may use. -#}
{% macro chat_roles() -%}
{{ return(['system', 'user', 'assistant']) }}
{%- endmacro %}


{#- modelParameters of step 2 as a dict. `seed` makes sampling reproducible (the same questions on
    every machine and run); change var generation_seed to draw a different sample. -#}
{% macro question_parameters() -%}
{{ return({'temperature': var('question_temperature'), 'max_tokens': var('question_max_tokens') | int,
           'seed': var('generation_seed') | int}) }}
{%- endmacro %}


{#- modelParameters of step 3 as a dict; struct_literal() / named_struct_literal() spell it in SQL. -#}
{% macro response_parameters() -%}
{{ return({'temperature': var('response_temperature'), 'max_tokens': var('response_max_tokens') | int,
           'seed': var('generation_seed') | int}) }}
{%- endmacro %}
