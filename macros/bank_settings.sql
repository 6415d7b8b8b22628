{#- Settings macros that return values (lists, dicts) instead of text.

    They live in their own file on purpose: a macro that uses {{ return(...) }} must be called from
    another file (the engine wraps macros per file; a same-file call would let the return escape to
    the caller; see the pipeline report). -#}

{#- The chat roles a training conversation may use. -#}
{% macro chat_roles() -%}
{{ return(['system', 'user', 'assistant']) }}
{%- endmacro %}


{#- modelParameters of step 2 as a dict (sample_id only distinguishes cache entries: change the var
    question_sample to draw a fresh set of questions at the same settings). -#}
{% macro question_parameters() -%}
{{ return({'temperature': var('question_temperature'), 'max_tokens': var('question_max_tokens') | int,
           'sample_id': var('question_sample') | int}) }}
{%- endmacro %}


{#- modelParameters of step 3 as a dict; struct_literal() / named_struct_literal() spell it in SQL. -#}
{% macro response_parameters() -%}
{{ return({'temperature': var('response_temperature'), 'max_tokens': var('response_max_tokens') | int}) }}
{%- endmacro %}
