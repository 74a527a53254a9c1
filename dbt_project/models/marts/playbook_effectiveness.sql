{#-
    How each play did, per calendar month of firing: how often it fired, how
    many firings were delivered, what outcomes CSMs recorded, and the orders
    that followed (int_orders_attributed_to_actions). A firing converted when
    its outcome is `won` or an order was attributed to it.
-#}
with

actions as (

    select * from {{ ref('stg_ops__playbook_actions') }}

),

attributions as (

    select * from {{ ref('int_orders_attributed_to_actions') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

attributions_rolled_to_actions as (

    select
        action_id,
        count(*) as attributed_orders,
        sum(amount_base) as attributed_revenue_base

    from attributions

    group by action_id

),

actions_scored as (

    select
        actions.playbook,
        cast({{ dbt.date_trunc('month', 'actions.fired_date') }} as date) as month,
        actions.status,
        actions.outcome,
        coalesce(attributions_rolled_to_actions.attributed_orders, 0) as attributed_orders,
        coalesce(attributions_rolled_to_actions.attributed_revenue_base, 0) as attributed_revenue_base,
        (
            actions.outcome = 'won'
            or attributions_rolled_to_actions.attributed_orders is not null
        ) as is_converted

    from actions
    left join attributions_rolled_to_actions
        on actions.action_id = attributions_rolled_to_actions.action_id

    where actions.fired_date <= (select as_of_date from run_context)

),

actions_rolled_to_months as (

    select
        playbook,
        month,
        count(*) as fired,
        sum(case when status = 'sent' then 1 else 0 end) as sent,
        sum(case when status = 'skipped' then 1 else 0 end) as skipped,
        sum(case when status = 'failed' then 1 else 0 end) as failed,
        sum(case when outcome is not null then 1 else 0 end) as outcomes_recorded,
        sum(case when outcome = 'won' then 1 else 0 end) as won,
        sum(case when outcome = 'lost' then 1 else 0 end) as lost,
        sum(case when outcome = 'no_response' then 1 else 0 end) as no_response,
        sum(case when is_converted then 1 else 0 end) as converted,
        sum(attributed_orders) as attributed_orders,
        sum(attributed_revenue_base) as attributed_revenue_base

    from actions_scored

    group by playbook, month

),

rates_computed as (

    select
        actions_rolled_to_months.*,
        cast(converted as numeric) / fired as conversion_rate

    from actions_rolled_to_months

)

select * from rates_computed
