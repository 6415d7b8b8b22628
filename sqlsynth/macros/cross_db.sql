{#- dbt's cross-database macros (dbt-core's `dbt` package), callable as `dbt.date_trunc(...)` or
    `date_trunc(...)` as in dbt. They write DuckDB SQL that sqlglot transpiles to Spark SQL, in
    spellings chosen so both engines give the same values (see README "dbt compatibility"). -#}

{% macro date_trunc(datepart, date) -%}
date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{#- Counts datepart boundaries crossed, as dbt does on every adapter. Both sides are truncated first:
    Spark's three-argument datediff counts whole units, which then equals the boundaries crossed. -#}
{% macro datediff(first_date, second_date, datepart) -%}
date_diff('{{ datepart }}', date_trunc('{{ datepart }}', cast({{ first_date }} as timestamp)), date_trunc('{{ datepart }}', cast({{ second_date }} as timestamp)))
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
({{ from_date_or_timestamp }} + interval ({{ interval }}) {{ datepart }})
{%- endmacro %}

{% macro last_day(date, datepart) -%}
cast(date_trunc('{{ datepart }}', {{ date }}) + interval 1 {{ datepart }} - interval 1 day as date)
{%- endmacro %}

{% macro date(year, month, day) -%}
make_date({{ year }}, {{ month }}, {{ day }})
{%- endmacro %}

{% macro current_timestamp() -%}
current_timestamp
{%- endmacro %}

{% macro concat(fields) -%}
{{ fields | join(' || ') }}
{%- endmacro %}

{% macro hash(field) -%}
md5(cast({{ field }} as varchar))
{%- endmacro %}

{% macro safe_cast(field, type) -%}
try_cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) -%}
split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}

{% macro replace(field, old_chars, new_chars) -%}
replace({{ field }}, {{ old_chars }}, {{ new_chars }})
{%- endmacro %}

{% macro length(expression) -%}
length({{ expression }})
{%- endmacro %}

{% macro position(substring_text, string_text) -%}
position({{ substring_text }} in {{ string_text }})
{%- endmacro %}

{% macro right(string_text, length_expression) -%}
right({{ string_text }}, {{ length_expression }})
{%- endmacro %}

{% macro any_value(expression) -%}
any_value({{ expression }})
{%- endmacro %}

{% macro bool_or(expression) -%}
bool_or({{ expression }})
{%- endmacro %}

{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
{%- if limit_num -%}
{{ exceptions.raise_compiler_error("listagg's limit_num is not supported: filter the rows first") }}
{%- endif -%}
string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %})
{%- endmacro %}

{% macro cast_bool_to_text(field) -%}
cast({{ field }} as varchar)
{%- endmacro %}

{% macro escape_single_quotes(expression) -%}
{{ expression | replace("'", "''") }}
{%- endmacro %}

{% macro string_literal(value) -%}
'{{ value }}'
{%- endmacro %}

{% macro except() %}except{% endmacro %}

{% macro intersect() %}intersect{% endmacro %}

{% macro type_string() %}varchar{% endmacro %}

{% macro type_timestamp() %}timestamp{% endmacro %}

{% macro type_float() %}double{% endmacro %}

{% macro type_numeric() %}numeric(28, 6){% endmacro %}

{% macro type_bigint() %}bigint{% endmacro %}

{% macro type_int() %}integer{% endmacro %}

{% macro type_boolean() %}boolean{% endmacro %}

{#- dbt's (and dbt_utils') date_spine: one row per datepart from start_date, end_date excluded, in a
    column date_<datepart> (a timestamp, as DuckDB's date + interval). The series is unnested in a
    subquery so that it ports to Spark (sequence + explode). -#}
{% macro date_spine(datepart, start_date, end_date) -%}
select date_{{ datepart }}
from (select unnest(generate_series(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp),
                                    interval 1 {{ datepart }})) as date_{{ datepart }}) as spine
where date_{{ datepart }} < cast({{ end_date }} as timestamp)
{%- endmacro %}
