-- The hand-written seed examples, typed and trimmed (seeds/seed_examples.csv).
-- var examples_per_topic > 0 keeps only the first N examples of each topic (a smaller, cheaper run).
select
    cast(seed_id as integer)                              as seed_id,
    trim(topic)                                           as topic,
    trim(question)                                        as question,
    lower(trim(in_scope)) in ('yes', 'y', 'true', '1')    as in_scope
from {{ ref('seed_examples') }}
{%- if var('examples_per_topic', 0) | int > 0 %}
qualify row_number() over (partition by trim(topic) order by cast(seed_id as integer))
        <= {{ var('examples_per_topic') | int }}
{%- endif %}
