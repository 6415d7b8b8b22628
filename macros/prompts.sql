{#- Prompt templates for the bank-assistant pipeline (MISSION.md Workflow A, steps 2 and 3).

    Each prompt is a template with {placeholders} for columns; `prompt_sql` turns it into a SQL
    expression (literal || column || literal ...), so the final prompt text is a column that can be
    inspected in question_prompts / response_prompts before anything is sent. Every knob is a var
    (project.yml `vars:` or `--vars`); edit the wording here. -#}

{% macro sql_string(text) -%}
'{{ text | string | replace("'", "''") }}'
{%- endmacro %}


{#- template: text with {name} placeholders; columns: {name: SQL expression}. -#}
{% macro prompt_sql(template, columns) -%}
{%- set parts = modules.re.split('\\{([a-z_]+)\\}', template) -%}
{%- for part in parts -%}
  {%- if loop.index is odd -%}
    {%- if part -%}{{ sql_string(part) }}{%- else -%}''{%- endif -%}
  {%- else -%}
    {%- if part not in columns -%}
      {{ exceptions.raise_compiler_error("prompt placeholder {" ~ part ~ "} has no column; known: " ~ (columns.keys() | list | join(', '))) }}
    {%- endif -%}
    coalesce(cast({{ columns[part] }} as varchar), '')
  {%- endif -%}
  {{- ' || ' if not loop.last -}}
{%- endfor -%}
{%- endmacro %}


{#- ------------------------------------------------------------------ step 2: questions -#}

{% macro question_prompt_template() -%}
You write training data for {{ var('bank_name') }}'s customer-service assistant.
Example customer question: "{question}"
Category: {topic_label}. {scope_note}
Steps: 1. analyse the example and its category; 2. list other subtopics of the category; 3. frame one new question per subtopic, as a customer would ask it; 4. check diversity: no two alike, none copying the example; 5. keep each one short: one sentence, at most {{ var('question_max_words') }} words; 6. give brief reasoning, then the questions.
Reply as JSON: {"reasoning": "...", "questions": [exactly {{ var('n_questions') }} questions]}.
{%- endmacro %}


{#- The SQL expression of the question prompt for a row with topic, question, in_scope columns. -#}
{% macro question_prompt(topic='topic', question='question', in_scope='in_scope') -%}
{{ prompt_sql(question_prompt_template(), {
    'question': question,
    'topic_label': "replace(" ~ topic ~ ", '_', ' ')",
    'scope_note': "case when " ~ in_scope ~ " then 'The bank answers these.' "
                  ~ "else 'Out of scope (the bank declines these), but customers still ask them.' end",
}) }}
{%- endmacro %}


{#- responseFormat of step 2: {reasoning, questions[]} as a JSON schema, bounded by vars (a tiny local
    model writes until max_tokens unless lengths are bounded; a real teacher ignores the bounds it
    does not need). Validated with pydantic by ai_query; invalid answers are re-asked. Var
    question_response_format (a pydantic model name from udfs/, e.g. QuestionSet, or a DDL/JSON
    schema string) replaces it. -#}
{% macro question_response_format() -%}
{%- if var('question_response_format', '') -%}
{{ sql_string(var('question_response_format')) }}
{%- else -%}
{%- set n = var('n_questions') | int -%}
{%- set schema = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string", "maxLength": var('reasoning_max_chars') | int},
        "questions": {"type": "array", "minItems": n, "maxItems": n,
                      "items": {"type": "string", "minLength": 5, "maxLength": var('question_max_chars') | int}},
    },
    "required": ["reasoning", "questions"],
    "additionalProperties": false,
} -%}
{{ sql_string(tojson(schema)) }}
{%- endif -%}
{%- endmacro %}




{#- ------------------------------------------------------------------ step 3: responses -#}

{#- Step 3 sends two messages: a system message with the rules and the reasoning scaffold
    (response_instructions), and the customer's question as the user message, so the teacher answers
    the customer the way the student will be asked. The per-row scope note comes last, so everything
    before it is one prefix shared by every request (the local backend computes its KV cache once). -#}
{% macro response_instructions_template() -%}
You are the customer-service assistant of {{ var('bank_name') }}. Rules:
{rules}
Before you answer: 1. analyse what the customer needs; 2. decide if it is in scope (accounts, cards, payments, transfers, general money guidance) or out of scope (investment, tax, legal, predictions, other people's data); 3. draft an answer that follows each rule (out of scope: decline, rule P08); 4. check it is safe and compliant; 5. revise it for tone; 6. output only the final answer, in "content".
{%- if var('response_scope_hint') %}
Note: {scope_note}
{%- endif %}
{%- endmacro %}


{% macro response_instructions(in_scope='in_scope', rules='rules_text') -%}
{{ prompt_sql(response_instructions_template(), {
    'rules': rules,
    'scope_note': "case when " ~ in_scope ~ " then 'this question is in scope: answer it.' "
                  ~ "else 'this question is OUT OF SCOPE: decline it politely.' end",
}) }}
{%- endmacro %}


{#- Step 3's whole request as the teacher gets it: [system: instructions, user: question]. -#}
{% macro response_request(question='question', in_scope='in_scope', rules='rules_text') -%}
[{{ chat_message('system', response_instructions(in_scope, rules)) }}, {{ chat_message('user', question) }}]
{%- endmacro %}


{#- The same content as ONE text (instructions, then the question), for a caller that needs a single
    user message (kept for macros/eval.sql; prefer response_request). -#}
{% macro response_prompt(question='question', in_scope='in_scope', rules='rules_text') -%}
{{ response_instructions(in_scope, rules) }} || chr(10) || chr(10) || 'Customer question: ' || coalesce(cast({{ question }} as varchar), '')
{%- endmacro %}


{#- Step 3's responseFormat, in both spellings (the DDL string is the same in both dialects). -#}
{% macro response_format() -%}
'STRUCT<content: STRING>'
{%- endmacro %}




{#- A constant dict as a DuckDB struct literal / as Databricks named_struct(...). -#}
{% macro struct_literal(values) -%}
{ {%- for key, value in values.items() -%}'{{ key }}': {{ value }}{{ ', ' if not loop.last }}{%- endfor -%} }
{%- endmacro %}

{% macro named_struct_literal(values) -%}
named_struct({%- for key, value in values.items() -%}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}


{#- What decides an answer besides the prompt: a row whose prompt || generation_tag changed is
    generated again by the incremental models. No quote characters in it, so that the SQL literal
    is spelled the same in DuckDB and Databricks SQL. -#}
{% macro question_generation_tag() -%}
{{ return((var('question_endpoint') ~ '|' ~ question_response_format() ~ '|' ~ tojson(question_parameters())
          ~ '|seed_questions=' ~ var('include_seed_questions') ~ '|words=' ~ var('question_min_words') ~ '-' ~ var('question_max_words'))
          | replace("'", "")) }}
{%- endmacro %}

{% macro response_generation_tag() -%}
{{ return((var('response_endpoint') ~ '|' ~ response_format() ~ '|' ~ tojson(response_parameters()))
          | replace("'", "")) }}
{%- endmacro %}
