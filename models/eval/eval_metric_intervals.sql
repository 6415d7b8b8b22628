-- Each quality and cost metric of eval_metrics per contestant with its n and a 95% interval: Wilson
-- for rates (a 0/1 value per answer), a percentile bootstrap for means (var eval_bootstrap_samples
-- resamples drawn by a fixed hash, so a re-run gives the same interval). A metric with n below var
-- eval_min_n (30) is `indicative`: its interval is too wide to rank contestants on.
{{ eval_config() }}
{%- set samples = var('eval_bootstrap_samples', 1000) | int %}

with graded as (
    select *, refused_by_phrase or coalesce(judge_refused, false) as refused
    from {{ ref('eval_judgements') }}
),

observations as (   -- one value per (contestant, metric, answer)
    select contestant, 'in_scope_answer_rate' as metric, 'wilson' as method, question_id, 1.0 - refused::int as x
    from graded where in_scope
    union all
    select contestant, 'out_of_scope_refusal_rate', 'wilson', question_id, refused::double
    from graded where not in_scope
    union all
    select contestant, 'follows_rules_rate', 'wilson', question_id, judge_follows_rules::double
    from graded where judge_follows_rules is not null
    {%- for metric, column in [('mean_judge_score', 'judge_score'), ('prompt_tokens_per_call', 'prompt_tokens'),
                               ('completion_tokens_per_call', 'completion_tokens'),
                               ('latency_ms_per_call', 'latency_ms'), ('answer_words', 'answer_words')] %}
    union all
    select contestant, '{{ metric }}', 'bootstrap', question_id, {{ column }}::double
    from graded where {{ column }} is not null
    {%- endfor %}
),

stats as (
    select contestant, metric, any_value(method) as method, count(*) as n, avg(x) as value, sum(x) as hits
    from observations
    group by contestant, metric
),

indexed as (
    select contestant, metric, x,
           row_number() over (partition by contestant, metric order by question_id) - 1 as i
    from observations
    where method = 'bootstrap'
),

draws as (   -- resample b: n positions drawn with replacement
    select s.contestant, s.metric, b.b,
           (hash(s.contestant, s.metric, b.b, d.j) % s.n::ubigint)::bigint as i
    from stats as s, range({{ samples }}) as b(b), range(s.n) as d(j)
    where s.method = 'bootstrap'
),

bootstrap as (
    select contestant, metric, quantile_cont(mean, 0.025) as ci_low, quantile_cont(mean, 0.975) as ci_high
    from (select d.contestant, d.metric, d.b, avg(v.x) as mean
          from draws as d
          join indexed as v using (contestant, metric, i)
          group by d.contestant, d.metric, d.b)
    group by contestant, metric
)

select s.contestant, s.metric, s.method, s.n, s.value,
       case when s.method = 'wilson' then {{ wilson_bound('s.hits', 's.n', '-') }} else b.ci_low end  as ci_low,
       case when s.method = 'wilson' then {{ wilson_bound('s.hits', 's.n', '+') }} else b.ci_high end as ci_high,
       s.n < {{ var('eval_min_n', 30) | int }}                                                         as indicative
from stats as s
left join bootstrap as b using (contestant, metric)
order by s.contestant, s.metric
