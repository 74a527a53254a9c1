{#-
    Usage per account over windows ending on as_of: events in the last 30
    days (as_of - 29 .. as_of), the 30 before (as_of - 59 .. as_of - 30) and
    the distinct features used in 90 days are as_of's row of
    account_signals_daily (one definition of each signal, which backtests
    replay); events in 90 days and the single feature come from the daily
    rollups. Only days at or before as_of count. One row per account existing on as_of
    with any usage event at or before as_of (0 events in the windows when
    all of them are older).
-#}
with

usage_days as not materialized (

    -- read three times (recent days, two index probes per account): inline
    -- it, or PostgreSQL would copy the whole rollup and scan the copy per probe
    select * from {{ ref('int_usage_rolled_to_account_days') }}

),

account_features as (

    select * from {{ ref('int_usage_rolled_to_account_features') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

recent_days as (

    -- as_of as a scalar, so only the last 90 days of the rollup are read
    select
        account_id,
        event_count,
        (select as_of_date from run_context) - activity_date as days_ago

    from usage_days
    where activity_date <= (select as_of_date from run_context)
        and activity_date > (select as_of_date from run_context) - 90

),

recent_rolled as (

    select
        account_id,
        sum(event_count) as events_90d

    from recent_days
    group by account_id

),

signals as (

    select signals.*
    from {{ ref('account_signals_daily') }} as signals
    where signals.signal_date = (select as_of_date from run_context)

),

accounts_with_usage as (

    -- one index probe per account on (account_id, activity_date), not a scan of every day
    select
        accounts.account_id,
        accounts.as_of_date,
        exists (
            select 1
            from usage_days
            where usage_days.account_id = accounts.account_id
                and usage_days.activity_date <= accounts.as_of_date
                and usage_days.feature_event_count > 0
        ) as has_feature_data

    from accounts
    where exists (
        select 1
        from usage_days
        where usage_days.account_id = accounts.account_id
            and usage_days.activity_date <= accounts.as_of_date
    )

),

features_counted as (

    select
        account_id,
        count(*) as features_used_90d,
        min(feature) as first_feature

    from account_features
    group by account_id

),

joined as (

    select
        accounts_with_usage.account_id,
        accounts_with_usage.as_of_date,
        coalesce(signals.events_30d, 0) as events_30d,
        coalesce(signals.events_prev_30d, 0) as events_prev_30d,
        coalesce(recent_rolled.events_90d, 0) as events_90d,
        signals.usage_change,
        coalesce(signals.features_used_90d, 0) as features_used_90d,
        case when signals.features_used_90d = 1 then features_counted.first_feature end as single_feature,
        accounts_with_usage.has_feature_data

    from accounts_with_usage
    left join signals
        on accounts_with_usage.account_id = signals.account_id
    left join recent_rolled
        on accounts_with_usage.account_id = recent_rolled.account_id
    left join features_counted
        on accounts_with_usage.account_id = features_counted.account_id

)

select * from joined
