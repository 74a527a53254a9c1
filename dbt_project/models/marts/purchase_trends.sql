{#-
    One row per account with at least one order by as_of. Amounts stay in
    the account's currency (column currency). Orders are dated in the run's
    time zone; the BTYD columns match lifetimes'
    summary_data_from_transaction_data(freq='D', observation_period_end=as_of).
-#}
with

orders as (

    select * from {{ ref('int_orders_filtered_to_as_of') }}

),

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

account_currencies as (

    select * from {{ ref('int_contracts_rolled_to_accounts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

as_of_read as (

    -- no FROM: the planner knows this is one row (ops.run_context has no
    -- statistics, and a guess of hundreds of rows would spoil every join)
    select (select as_of_date from run_context) as as_of_date

),

windows_bounded as (

    -- (floor, as_of] windows: last 12 months and the 12 months before them
    select
        as_of_date,
        cast({{ dbt.dateadd('month', -12, 'as_of_date') }} as date) as last_12m_floor_date,
        cast({{ dbt.dateadd('month', -24, 'as_of_date') }} as date) as prior_12m_floor_date

    from as_of_read

),

orders_sequenced as (

    select
        orders.*,
        row_number() over (
            partition by orders.account_id
            order by orders.ordered_at desc, orders.order_id desc
        ) as recency_rank,
        lag(orders.amount) over (
            partition by orders.account_id
            order by orders.ordered_at, orders.order_id
        ) as previous_amount

    from orders

),

orders_summarised as (

    select
        orders_sequenced.account_id,
        count(*) as order_count,
        sum(orders_sequenced.amount) as total_amount,
        min(orders_sequenced.order_date) as first_order_date,
        max(orders_sequenced.order_date) as last_order_date,
        coalesce(
            sum(orders_sequenced.amount) filter (
                where orders_sequenced.order_date > windows_bounded.last_12m_floor_date
            ),
            0
        ) as amount_last_12m,
        coalesce(
            sum(orders_sequenced.amount) filter (
                where orders_sequenced.order_date > windows_bounded.prior_12m_floor_date
                and orders_sequenced.order_date <= windows_bounded.last_12m_floor_date
            ),
            0
        ) as amount_prior_12m,
        -- the last N orders strictly increase: each of the last N - 1 is above the one before it
        count(*) >= {{ var('purchase_growing_last_orders') }}
        and coalesce(
            bool_and(orders_sequenced.amount > orders_sequenced.previous_amount) filter (
                where orders_sequenced.recency_rank < {{ var('purchase_growing_last_orders') }}
            ),
            true
        ) as is_growing

    from orders_sequenced
    cross join windows_bounded

    group by orders_sequenced.account_id

),

period_end_spend_summed as (

    -- spend in the fiscal year-end month or the month before it (12 before 1)
    select
        orders.account_id,
        accounts.fiscal_year_end_month,
        coalesce(
            sum(orders.amount) filter (
                where cast(extract(month from orders.order_date) as integer) in (
                    accounts.fiscal_year_end_month,
                    (accounts.fiscal_year_end_month + 10) % 12 + 1
                )
            ),
            0
        ) as period_end_amount

    from orders
    inner join accounts
        on orders.account_id = accounts.account_id

    group by orders.account_id, accounts.fiscal_year_end_month

),

days_summed as (

    select
        account_id,
        order_date,
        sum(amount) as daily_amount,
        min(order_date) over (partition by account_id) as first_order_date

    from orders

    group by account_id, order_date

),

btyd_summarised as (

    select
        days_summed.account_id,
        cast(count(*) - 1 as integer) as frequency,
        max(days_summed.order_date) - min(days_summed.order_date) as recency_days,
        as_of_read.as_of_date - min(days_summed.order_date) as tenure_days,
        coalesce(
            avg(days_summed.daily_amount) filter (
                where days_summed.order_date > days_summed.first_order_date
            ),
            0
        ) as monetary_value

    from days_summed
    cross join as_of_read

    group by days_summed.account_id, as_of_read.as_of_date

),

trends_joined as (

    select
        orders_summarised.account_id,
        orders_summarised.order_count,
        orders_summarised.total_amount,
        orders_summarised.first_order_date,
        orders_summarised.last_order_date,
        orders_summarised.amount_last_12m,
        orders_summarised.amount_prior_12m,
        (orders_summarised.amount_last_12m - orders_summarised.amount_prior_12m)
            / nullif(orders_summarised.amount_prior_12m, 0) as growth_rate_12m,
        orders_summarised.is_growing,
        case
            when period_end_spend_summed.fiscal_year_end_month is not null
                then period_end_spend_summed.period_end_amount
                    / nullif(orders_summarised.total_amount, 0)
        end as period_end_share,
        btyd_summarised.frequency,
        btyd_summarised.recency_days,
        btyd_summarised.tenure_days,
        btyd_summarised.monetary_value,
        coalesce(account_currencies.currency, '{{ var("base_currency") }}') as currency

    from orders_summarised
    inner join period_end_spend_summed
        on orders_summarised.account_id = period_end_spend_summed.account_id
    inner join btyd_summarised
        on orders_summarised.account_id = btyd_summarised.account_id
    left join account_currencies
        on orders_summarised.account_id = account_currencies.account_id

)

select * from trends_joined
