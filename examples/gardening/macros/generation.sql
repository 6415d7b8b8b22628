{# The generation settings of both answer models, from vars (so --vars changes them in one place). #}
{% macro generation_parameters() -%}
{
    'max_new_tokens': {{ var('max_new_tokens') }},
    'do_sample': {{ 'true' if var('do_sample') else 'false' }},
    'num_beams': {{ var('num_beams') }},
    'temperature': {{ var('temperature') }}::double,
    'top_p': {{ var('top_p') }}::double,
    'top_k': {{ var('top_k') }},
    'repetition_penalty': {{ var('repetition_penalty') }}::double,
    'num_return_sequences': {{ var('num_return_sequences') }}
}
{%- endmacro %}
