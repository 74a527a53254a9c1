{#-
    usage_decline: accounts (not churned) whose usage events in the last 30
    days are down by usage_decline_min_drop or more (0.30: exactly 30% down
    fires) against the 30 days before, which held at least
    usage_decline_min_previous_events events (the rule is the
    usage_decline_rule macro, which play_backtests replays over the signal
    history). One row per account; the occasion is as_of's month.
-#}
with

usage_windows as (

    select * from {{ ref('int_usage_rolled_to_account_windows') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

declining_accounts as (

    select * from usage_windows
    where {{ usage_decline_rule('usage_windows') }}

),

audience as (

    select
        'usage_decline' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        accounts.account_id || ':' || to_char(accounts.as_of_date, 'YYYY-MM') as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        declining_accounts.events_30d,
        declining_accounts.events_prev_30d,
        round(100 * declining_accounts.usage_change, 1) as usage_change_pct

    from declining_accounts
    inner join accounts
        on declining_accounts.account_id = accounts.account_id
    inner join segments
        on declining_accounts.account_id = segments.account_id
    where not accounts.is_churned

)

select * from audience
