{#- Custom generic data tests for chat datasets (used in models/bank/schema.yml). Each returns the
    failing rows. -#}

{#- No NULL, empty or whitespace-only strings. -#}
{% test not_blank(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} is null or trim({{ column_name }}) = ''
{% endtest %}


{#- A chat conversation: a non-empty list of {role, content}; roles from the fixed set; no blank
    content; at most one system turn, first; then user/assistant alternating, starting with user and
    ending with assistant. -#}
{% test valid_chat(model, column_name) %}
with conversations as (
    select {{ column_name }} as messages,
           coalesce(list_extract({{ column_name }}, 1).role = 'system', false)::int as sys
    from {{ model }}
)
select * from (
select messages,
       case
           when messages is null or len(messages) = 0 then 'no messages'
           when not list_bool_and(list_transform(messages, lambda m: coalesce(m.role in (
                {%- for role in chat_roles() %}'{{ role }}'{{ ', ' if not loop.last }}{% endfor -%}), false)))
               then 'role not in {{ chat_roles() | join(", ") }}'
           when not list_bool_and(list_transform(messages, lambda m: coalesce(trim(m.content) <> '', false)))
               then 'blank content'
           when len(messages) - sys < 2 then 'no user/assistant exchange'
           when list_bool_or(list_transform(messages, lambda m, i: i > sys and m.role <> (
                case when (i - sys) % 2 = 1 then 'user' else 'assistant' end)))
               then 'turns do not alternate user/assistant'
           when list_extract(messages, -1).role <> 'assistant' then 'does not end with assistant'
       end as problem
from conversations
)
where problem is not null
{% endtest %}


{#- The model has at least `min_rows` rows (default: var min_conversations). -#}
{% test min_rows(model, min_rows=none) %}
{%- set min_rows = var('min_conversations') if min_rows is none else min_rows %}
select count(*) as n_rows, {{ min_rows }} as min_rows
from {{ model }}
having count(*) < {{ min_rows }}
{% endtest %}


{#- Every value of `field` in `parent` (optionally filtered) has at least one row here: the reverse
    of `relationships` (e.g. each out-of-scope seed produced questions). -#}
{% test covers(model, column_name, parent, field, parent_where='true', where_here='true') %}
select p.{{ field }} as missing
from {{ parent }} as p
where ({{ parent_where }})
  and p.{{ field }} not in (select {{ column_name }} from {{ model }} where ({{ where_here }}) and {{ column_name }} is not null)
{% endtest %}
