-- One row per contestant: quality (in-scope answer rate, out-of-scope refusal rate, judge score) and
-- cost (prompt tokens, latency, estimated cost per 1k calls at var eval_price_* per 1k tokens), and
-- each contestant against the expensive baseline (var eval_baseline: the base student with the rules
-- prompt) — the fine-tuned student's row answers "same behaviour, fraction of the tokens?".
-- Each metric carries <metric>_n and a 95% interval <metric>_ci_low/_ci_high (eval_metric_intervals:
-- Wilson for rates, bootstrap for means); `indicative_only` names the metrics with n < var eval_min_n.
{{ eval_config() }}
{%- set metrics = ['in_scope_answer_rate', 'out_of_scope_refusal_rate', 'mean_judge_score', 'follows_rules_rate',
                   'prompt_tokens_per_call', 'completion_tokens_per_call', 'latency_ms_per_call', 'answer_words'] %}

with graded as (
    select *, refused_by_phrase or coalesce(judge_refused, false) as refused
    from {{ ref('eval_judgements') }}
),

per_contestant as (
    select contestant,
           count(*)                                                        as n_answers,
           avg(case when in_scope then 1.0 - refused::int end)             as in_scope_answer_rate,
           avg(case when not in_scope then refused::double end)            as out_of_scope_refusal_rate,
           avg(judge_score)                                                as mean_judge_score,
           avg(judge_follows_rules::double)                                as follows_rules_rate,
           avg(prompt_tokens)                                              as prompt_tokens_per_call,
           avg(completion_tokens)                                          as completion_tokens_per_call,
           avg(latency_ms)                                                 as latency_ms_per_call,
           -- per 1k calls: 1000 x (tokens / 1000 x price per 1k tokens)
           avg(prompt_tokens) * {{ var('eval_price_per_1k_input_tokens', 0.00015) }}
             + avg(completion_tokens) * {{ var('eval_price_per_1k_output_tokens', 0.0006) }}
                                                                           as est_cost_per_1k_calls,
           avg(answer_words)                                               as answer_words
    from graded
    group by contestant
),

baseline as (
    select * from per_contestant where contestant = {{ sql_string(var('eval_baseline', 'base_with_rules')) }}
),

intervals as (   -- eval_metric_intervals pivoted: <metric>_n, _ci_low, _ci_high per contestant
    select contestant,
           {%- for m in metrics %}
           coalesce(max(n) filter (where metric = '{{ m }}'), 0) as {{ m }}_n,
           max(ci_low) filter (where metric = '{{ m }}')         as {{ m }}_ci_low,
           max(ci_high) filter (where metric = '{{ m }}')        as {{ m }}_ci_high{{ ',' if not loop.last }}
           {%- endfor %}
    from {{ ref('eval_metric_intervals') }}
    group by contestant
)

select p.*,
       p.prompt_tokens_per_call / nullif(b.prompt_tokens_per_call, 0)       as prompt_tokens_vs_baseline,
       p.out_of_scope_refusal_rate / nullif(b.out_of_scope_refusal_rate, 0) as refusal_rate_vs_baseline,
       i.* exclude (contestant),
       nullif(concat_ws(', '
           {%- for m in metrics %}, case when i.{{ m }}_n < {{ var('eval_min_n', 30) | int }} then '{{ m }}' end{% endfor -%}
       ), '')                                                               as indicative_only
from per_contestant as p
left join baseline as b on true
left join intervals as i on i.contestant = p.contestant
order by p.contestant
