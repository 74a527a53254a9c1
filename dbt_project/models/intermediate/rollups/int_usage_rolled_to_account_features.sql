{#-
    Features each account used in the last 90 days (as_of - 89 .. as_of),
    from the daily usage rollup. One row per account and feature.
-#}
with

usage_days as (

    select * from {{ ref('int_usage_rolled_to_account_days') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

days_in_window as (

    -- as_of as a scalar: the planner filters days before unnesting their features
    select
        account_id,
        activity_date,
        features

    from usage_days
    where activity_date <= (select as_of_date from run_context)
        and activity_date > (select as_of_date from run_context) - 90
        and cardinality(features) > 0

),

unnested as (

    select
        days_in_window.account_id,
        days_in_window.activity_date,
        used.feature

    from days_in_window
    cross join lateral unnest(days_in_window.features) as used (feature)

),

rolled as (

    select
        account_id,
        feature,
        count(*) as active_days_90d,
        max(activity_date) as last_used_date

    from unnested
    group by account_id, feature

)

select * from rolled
