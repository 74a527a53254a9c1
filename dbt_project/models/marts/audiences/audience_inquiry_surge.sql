{#-
    inquiry_surge: accounts (not churned) with at least
    inquiry_surge_min_tickets_30d tickets opened in the last 30 days and at
    least inquiry_surge_min_ratio times as many as in the 30 days before.
    The rule is the inquiry_surge_rule macro (play_backtests replays it
    over the signal history). One row per account; the occasion is as_of's
    ISO week.
-#}
with

signals as (

    select * from {{ ref('account_signals_daily') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

surging_accounts as (

    select signals.*
    from signals
    inner join accounts
        on signals.account_id = accounts.account_id
        and signals.signal_date = accounts.as_of_date
    where {{ inquiry_surge_rule('signals') }}

),

audience as (

    select
        'inquiry_surge' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        accounts.account_id || ':' || to_char(accounts.as_of_date, 'IYYY-"W"IW') as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        surging_accounts.tickets_30d,
        surging_accounts.tickets_prev_30d,
        round(surging_accounts.tickets_30d / cast(nullif(surging_accounts.tickets_prev_30d, 0) as numeric), 2)
            as ticket_ratio

    from surging_accounts
    inner join accounts
        on surging_accounts.account_id = accounts.account_id
    inner join segments
        on surging_accounts.account_id = segments.account_id
    where not accounts.is_churned

)

select * from audience
