{#-
    Orders of known accounts placed at or before the end of as_of, each with
    its calendar day in the run's time zone. Data after as_of never counts.
    The run's as_of and time zone are read with scalar subqueries (one row,
    tested by exactly_one_row), which keeps the planner's row estimates right.
-#}
with

orders as (

    select * from {{ ref('stg_landing__orders') }}

),

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

orders_dated as (

    select
        orders.order_id,
        orders.account_id,
        orders.ordered_at,
        cast(orders.ordered_at at time zone (select timezone from run_context) as date) as order_date,
        orders.amount,
        orders.order_type,
        orders.product_sku,
        (select as_of_date from run_context) as as_of_date

    from orders

),

orders_filtered as (

    select orders_dated.*

    from orders_dated
    inner join accounts
        on orders_dated.account_id = accounts.account_id

    where orders_dated.order_date <= orders_dated.as_of_date

)

select * from orders_filtered
