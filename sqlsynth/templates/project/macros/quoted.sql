{#- A Jinja string as a SQL string literal ('it''s'). -#}
{% macro quoted(text) -%}
'{{ text | replace("'", "''") }}'
{%- endmacro %}
