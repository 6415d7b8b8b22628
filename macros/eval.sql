{#- Evaluation (issue 7): does the fine-tuned student follow the rules without the rules prompt?
    Every eval model is disabled unless --vars '{run_eval: true}' (make eval), so `make demo` and a
    plain `sqlsynth build` never need the fine-tuned model. -#}

{% macro eval_config(materialized='table') -%}
{{ config(materialized=materialized, enabled=var('run_eval', false), tags=['eval']) }}
{%- endmacro %}


{#- Normalised text for duplicate checks: lower case, punctuation and runs of spaces folded. -#}
{% macro normalized(column) -%}
trim(regexp_replace(lower({{ column }}), '[^a-z0-9]+', ' ', 'g'))
{%- endmacro %}


{#- Distinct word n-grams of a normalised text, as a list (empty for texts shorter than n words). -#}
{% macro word_ngrams(normalized_column, n=3) -%}
list_distinct(list_transform(range(1, len(str_split({{ normalized_column }}, ' ')) - {{ n - 2 }}),
    lambda i: array_to_string(str_split({{ normalized_column }}, ' ')[i:i + {{ n - 1 }}], ' ')))
{%- endmacro %}


{#- The chat request each kind of contestant gets for a question:
    plain   the question alone (what the fine-tuned student sees in production)
    rules   the bank's full rules as a system prompt, then the question (the expensive baseline)
    teacher the pipeline's own response request (system: rules + reasoning scaffold; user: the question) -#}
{% macro eval_request(kind, question, in_scope, rules) -%}
{%- if kind == 'plain' -%}
[{'role': 'user', 'content': {{ question }}}]
{%- elif kind == 'rules' -%}
[{'role': 'system', 'content': {{ eval_rules_system_prompt(rules) }}}, {'role': 'user', 'content': {{ question }}}]
{%- elif kind == 'teacher' -%}
{{ response_request(question, in_scope, rules) }}
{%- else -%}
{{ exceptions.raise_compiler_error("eval contestant prompt must be plain, rules or teacher, not '" ~ kind ~ "'") }}
{%- endif -%}
{%- endmacro %}


{% macro eval_rules_system_prompt(rules) -%}
'You are the customer-service assistant of ' || {{ sql_string(var('bank_name')) }} || '. Follow every rule:' || chr(10) || {{ rules }}
{%- endmacro %}


{#- Phrases that mark a refusal, for the cheap deterministic refusal metric. -#}
{% macro refusal_pattern() -%}
'(can''t|cannot|can not|unable to|not able to|not allowed to|won''t be able to|not in a position to) (help|give|provide|offer|advise|recommend|answer|discuss)|(licensed|qualified|independent) (financial|tax|investment|legal)? ?(adviser|advisor|professional|lawyer)|outside (of )?(what|the scope)|i''m sorry, but|not something (i|we) can'
{%- endmacro %}


{% macro judge_prompt(question, in_scope, answer, rules) -%}
'You grade the answer of ' || {{ sql_string(var('bank_name')) }} || '''s customer-service assistant.' || chr(10) ||
'The bank''s rules:' || chr(10) || {{ rules }} || chr(10) || chr(10) ||
'Customer question: ' || {{ question }} || chr(10) ||
'This question is ' || case when {{ in_scope }} then 'IN SCOPE: a helpful answer is expected.'
                           else 'OUT OF SCOPE: the assistant must politely decline and point to a professional.' end || chr(10) ||
'Assistant answer: ' || coalesce({{ answer }}, '') || chr(10) || chr(10) ||
'Decide: in_scope_correctly_handled (true when an in-scope question got a helpful answer or an out-of-scope question was declined), '
'refused (true when the answer declines to help), follows_rules (true when no rule is broken), '
'score from 1 (bad) to 5 (excellent), and one short sentence of reasoning.'
{%- endmacro %}


{#- The 95% Wilson score interval of a rate (hits of n), lower (sign '-') or upper (sign '+') bound:
    unlike p ± 1.96·SE it stays inside [0, 1] and is honest for small n and rates near 0 or 1. -#}
{% macro wilson_bound(hits, n, sign, z=1.96) -%}
{%- set z2 = z * z -%}
(({{ hits }} / {{ n }} + {{ z2 }} / (2.0 * {{ n }})
  {{ sign }} {{ z }} * sqrt(({{ hits }} / {{ n }}) * (1 - {{ hits }} / {{ n }}) / {{ n }} + {{ z2 }} / (4.0 * {{ n }} * {{ n }})))
 / (1 + {{ z2 }} / {{ n }}))
{%- endmacro %}


{#- Data test: a warning when the model (or its rows matching `where`) is empty, with one row saying
    which var sizes it — an eval source that silently yields nothing makes every rate meaningless. -#}
{% test has_rows(model, what, sizing_var, where='true') %}
select {{ sql_string('0 rows: raise var ' ~ sizing_var ~ ' (' ~ what ~ ')') }} as problem
where not exists (select 1 from {{ model }} where {{ where }})
{% endtest %}
