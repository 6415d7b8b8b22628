{#- The dbt_utils macros and generic tests real projects use most, written after dbt_utils' documented
    behaviour, so `dbt_utils.x` works without installing packages (a project macro of the same name
    wins). DuckDB SQL, portable to Spark through the transpiler. -#}

{% macro generate_surrogate_key(field_list) -%}
md5({%- for field in field_list -%}
coalesce(cast({{ field }} as varchar), '_dbt_utils_surrogate_key_null_')
{%- if not loop.last %} || '-' || {% endif -%}
{%- endfor -%})
{%- endmacro %}

{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}
{%- set columns_csv = combination_of_columns | join(', ') if not quote_columns
    else '"' ~ (combination_of_columns | join('", "')) ~ '"' %}
select {{ columns_csv }}, count(*) as n_records
from {{ model }}
group by {{ columns_csv }}
having count(*) > 1
{% endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
select *
from {{ model }}
where not (1 = 1
    {%- if min_value is not none %} and {{ column_name }} >{{ "=" if inclusive }} {{ min_value }}{% endif %}
    {%- if max_value is not none %} and {{ column_name }} <{{ "=" if inclusive }} {{ max_value }}{% endif %})
{% endtest %}

{% test not_constant(model, column_name) %}
select count(distinct {{ column_name }}) as distinct_values
from {{ model }}
having count(distinct {{ column_name }}) = 1
{% endtest %}

{% test at_least_one(model, column_name) %}
select count({{ column_name }}) as non_null_values
from {{ model }}
having count({{ column_name }}) = 0
{% endtest %}

{% test not_empty_string(model, column_name, trim_whitespace=true) %}
select {{ column_name }}
from {{ model }}
where {% if trim_whitespace %}trim({{ column_name }}){% else %}{{ column_name }}{% endif %} = ''
{% endtest %}

{% test not_null_proportion(model, column_name, at_least, at_most=1.0) %}
select *
from (select sum(case when {{ column_name }} is null then 0 else 1 end) / cast(count(*) as double)
             as not_null_proportion
      from {{ model }}) as proportions
where not_null_proportion < {{ at_least }} or not_null_proportion > {{ at_most }}
{% endtest %}

{% test equal_rowcount(model, compare_model) %}
select *
from (select (select count(*) from {{ model }}) as model_rows,
             (select count(*) from {{ compare_model }}) as compare_rows) as counts
where model_rows != compare_rows
{% endtest %}
