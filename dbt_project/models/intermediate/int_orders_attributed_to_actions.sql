{#-
    Orders attributed to the playbook firing that preceded them: an order
    placed by the account on a day after the firing and at most
    var('attribution_window_days') days after it. When several firings of the
    account qualify, the latest one takes the order (last touch), so no order
    is counted twice. Firings that reached nobody (skipped) or whose email
    failed cannot take an order. Amounts are converted to var('base_currency')
    with the account's currency.
-#}
with

actions as (

    select * from {{ ref('stg_ops__playbook_actions') }}

),

orders as (

    select * from {{ ref('int_orders_filtered_to_as_of') }}

),

account_currencies as (

    select * from {{ ref('int_contracts_rolled_to_accounts') }}

),

fx_rates as (

    {{ fx_rates() }}

),

touches_ranked as (

    select
        orders.order_id,
        orders.account_id,
        orders.order_date,
        orders.order_type,
        orders.amount,
        actions.action_id,
        actions.playbook,
        actions.fired_date,
        row_number() over (
            partition by orders.order_id
            order by actions.fired_date desc, actions.action_id desc
        ) as touch_rank

    from orders
    inner join actions
        on orders.account_id = actions.account_id
        and orders.order_date > actions.fired_date
        and orders.order_date <= {{ dbt.dateadd('day', var('attribution_window_days'), 'actions.fired_date') }}

    where actions.status in ('pending', 'sent')

),

orders_attributed as (

    select
        touches_ranked.order_id,
        touches_ranked.action_id,
        touches_ranked.playbook,
        touches_ranked.account_id,
        touches_ranked.fired_date,
        touches_ranked.order_date,
        touches_ranked.order_type,
        touches_ranked.amount * coalesce(fx_rates.rate_to_base, 1) as amount_base

    from touches_ranked
    left join account_currencies
        on touches_ranked.account_id = account_currencies.account_id
    left join fx_rates
        on fx_rates.currency = coalesce(account_currencies.currency, '{{ var("base_currency") }}')

    where touches_ranked.touch_rank = 1

)

select * from orders_attributed
