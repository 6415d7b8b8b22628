-- A singular test: it fails when it returns rows.
select * from {{ ref('stg_orders') }} where amount < 0
