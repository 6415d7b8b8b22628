select id as customer_id, first_name || ' ' || last_name as name, segment
from {{ ref('raw_customers') }}
