{% set statuses = ['completed', 'returned', 'placed'] %}

select
    c.customer_id,
    shout(c.name) as name,
    {% for status in statuses %}
    count(*) filter (where o.status = '{{ status }}') as {{ status }}_orders,
    {% endfor %}
    coalesce(sum(o.amount), 0) as total_amount
from {{ ref('stg_customers') }} c
left join {{ ref('stg_orders') }} o using (customer_id)
group by all
having coalesce(sum(o.amount), 0) >= {{ var('min_order_total') }}
