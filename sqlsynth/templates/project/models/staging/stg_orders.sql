select id as order_id, customer_id, order_date, status, {{ cents_to_dollars('amount_cents') }} as amount
from {{ ref('raw_orders') }}
