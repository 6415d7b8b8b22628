-- With enough conversations, the deterministic split puts some in eval and most in train.
with counts as (
    select count(*) as n,
           count(*) filter (where split = 'eval') as n_eval
    from {{ ref('chat_formatted') }}
)
select *
from counts
where n >= 20 and (n_eval = 0 or n_eval > n * greatest({{ var('eval_fraction') }} * 3, 0.5))
