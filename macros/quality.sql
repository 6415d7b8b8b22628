{#- Quality signals of generated rows (models/bank/response_quality.sql). Thresholds are vars
    (project.yml, "quality gates"); normalized() and word_ngrams() are in macros/eval.sql. -#}

{#- The decline exported for an out-of-scope question whose own answer failed a gate ('' = none);
    {bank_name} in var decline_answer is replaced by var bank_name. -#}
{% macro decline_answer() -%}
{{ sql_string(var('decline_answer', '') | replace('{bank_name}', var('bank_name'))) }}
{%- endmacro %}


{#- A customer question: ends with "?" or opens with a question word or auxiliary verb ("Can I ...",
    "How do ..."). A statement such as "This is a detailed and helpful explanation." is not one. -#}
{% macro looks_like_question(column) -%}
(regexp_matches({{ column }}, '\?\s*["'')]*\s*$')
 or regexp_matches(lower(trim({{ column }})), '^(what|how|why|when|where|which|who|whom|whose|can|could|would|will|should|shall|may|might|must|do|does|did|is|are|am|was|were|have|has|had|if)\b'))
{%- endmacro %}


{#- The share of a text's word trigrams found in another (1.0 = every trigram repeated). -#}
{% macro ngram_containment(grams, other_grams) -%}
case when len({{ grams }}) = 0 then 0.0
     else len(list_intersect({{ grams }}, {{ other_grams }})) / len({{ grams }}) end
{%- endmacro %}


{#- The reasons a row fails, in gate order, as a list (empty: the row passes). `signals` is a dict
    reason → SQL boolean expression. -#}
{% macro failed_gates(signals) -%}
list_filter([
  {%- for reason, failing in signals.items() %}
    case when coalesce({{ failing }}, false) then '{{ reason }}' end{{ ',' if not loop.last }}
  {%- endfor %}
], lambda reason: reason is not null)
{%- endmacro %}
