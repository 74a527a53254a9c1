{#-
    Spend per account as of as_of, in base_currency (amounts are in the
    account currency: int_accounts_profiled.currency, converted with
    fx_to_base): orders placed at or before as_of (their day in the run's
    time zone), and the ARR of contracts started by as_of (the value of the
    contracts signed, each ~one year). is_growing_buyer: the amounts of the
    account's last purchase_growing_last_orders orders strictly increase
    (orders by ordered_at, ties by order_id). One row per account.
-#}
with

orders as (

    select * from {{ ref('stg_landing__orders') }}

),

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

orders_up_to_as_of as (

    select
        orders.account_id,
        orders.order_id,
        orders.amount,
        row_number() over (
            partition by orders.account_id order by orders.ordered_at desc, orders.order_id desc
        ) as recency_rank

    from orders
    cross join run_context
    where cast(orders.ordered_at at time zone run_context.timezone as date) <= run_context.as_of_date

),

orders_rolled as (

    select
        account_id,
        count(*) as order_count,
        sum(amount) as order_amount

    from orders_up_to_as_of
    group by account_id

),

last_orders as (

    select
        account_id,
        amount,
        recency_rank,
        lead(amount) over (partition by account_id order by recency_rank) as previous_amount

    from orders_up_to_as_of
    where recency_rank <= {{ var('purchase_growing_last_orders') }}

),

last_orders_compared as (

    -- growing: each of the last N orders is larger than the one before it
    select
        account_id,
        count(*) = {{ var('purchase_growing_last_orders') }}
            and bool_and(amount > previous_amount or previous_amount is null) as is_growing_buyer

    from last_orders
    group by account_id

),

contracts_rolled as (

    select
        contracts.account_id,
        sum(contracts.arr) as contract_arr_amount

    from contracts
    cross join run_context
    where contracts.start_date <= run_context.as_of_date
    group by contracts.account_id

),

joined as (

    select
        accounts.account_id,
        accounts.as_of_date,
        accounts.currency,
        coalesce(orders_rolled.order_count, 0) as order_count,
        orders_rolled.order_amount * accounts.fx_rate_to_base as order_amount_base,
        contracts_rolled.contract_arr_amount * accounts.fx_rate_to_base as contract_value_base,
        coalesce(last_orders_compared.is_growing_buyer, false) as is_growing_buyer

    from accounts
    left join orders_rolled
        on accounts.account_id = orders_rolled.account_id
    left join last_orders_compared
        on accounts.account_id = last_orders_compared.account_id
    left join contracts_rolled
        on accounts.account_id = contracts_rolled.account_id

)

select * from joined
