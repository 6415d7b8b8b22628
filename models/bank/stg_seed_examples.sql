-- The hand-written seed examples, typed and trimmed (seeds/seed_examples.csv).
select
    cast(seed_id as integer)                              as seed_id,
    trim(topic)                                           as topic,
    trim(question)                                        as question,
    lower(trim(in_scope)) in ('yes', 'y', 'true', '1')    as in_scope
from {{ ref('seed_examples') }}
