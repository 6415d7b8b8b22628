{#- Chat formatting (MISSION.md step 4): {"messages": [{"role": ..., "content": ...}, ...]}.
    Roles come from a fixed set checked when the model compiles, so a typo such as " assistant"
    (the source notebook had one) is a compile error, not a silently broken training file. -#}



{% macro chat_message(role, content) -%}
{%- if role not in chat_roles() -%}
  {{ exceptions.raise_compiler_error("chat role '" ~ role ~ "' is not one of " ~ (chat_roles() | join(', '))
                                     ~ " (check for stray spaces)") }}
{%- endif -%}
{'role': '{{ role }}', 'content': {{ content }}}
{%- endmacro %}


{#- One user/assistant exchange as a list of messages, with an optional system turn first
    (var system_prompt; empty = none). -#}
{% macro chat_messages(user, assistant, system=none) -%}
{%- set system = var('system_prompt', '') if system is none else system -%}
[
  {%- if system %}{{ chat_message('system', sql_string(system)) }}, {% endif -%}
  {{ chat_message('user', user) }}, {{ chat_message('assistant', assistant) }}
]
{%- endmacro %}


{#- A deterministic train/eval split: md5 of (salt, id) as a number in [0, 1) against eval_fraction.
    The same id lands in the same split on every run and every machine. -#}
{% macro split_of(id_column, fraction=none, salt=none) -%}
{%- set fraction = var('eval_fraction') if fraction is none else fraction -%}
{%- set salt = var('split_salt') if salt is none else salt -%}
case when cast(('0x' || left(md5({{ sql_string(salt) }} || cast({{ id_column }} as varchar)), 8)) as bigint)
          / 4294967296.0 < {{ fraction }}
     then 'eval' else 'train' end
{%- endmacro %}


{#- Lineage: the key of the ai_query cache row (sqlsynth.cache, also in sqlsynth.calls) that answered
    the request whose message contents are `contents` (SQL expressions, in order) on `endpoint` with
    this responseFormat and these modelParameters (the latest); NULL when not cached. An aggregate, not
    ORDER BY ... LIMIT 1: Spark runs correlated scalar subqueries only when they aggregate. -#}
{% macro ai_cache_key(endpoint, contents, response_format, parameters) -%}
{%- if contents is string %}{% set contents = [contents] %}{% endif -%}
(select max_by(c.key, c.created_at) from sqlsynth.cache as c
  where c.endpoint = {{ sql_string(endpoint) }}
    and c.response_format = {{ response_format }}
    and json_array_length(c.request) = {{ contents | length }}
    {%- for content in contents %}
    and json_extract_string(c.request, '$[{{ loop.index0 }}].content') = {{ content }}
    {%- endfor %}
    {%- for key, value in parameters.items() %}
    and json_extract_string(c.parameters, '$.{{ key }}') = '{{ value }}'
    {%- endfor %})
{%- endmacro %}
