{#-
    The six account_health component scores of each account on as_of, each
    0-100 and null when the account has no data for that signal:
    - usage_trend_score: 50 + 50 * clamp(change / health_usage_full_change,
      -1, 1), change = (events in 30 days - events in the 30 before) / the
      30 before. No events before but some now: 100; none in either window
      (but earlier usage): 0. Null: no usage event at or before as_of, or an
      account younger than health_trend_min_age_days (60: two full windows):
      its "30 days before" began before it existed, so a new account would
      score as growing whatever it does.
    - adoption_breadth_score: 100 * features used in 90 days /
      health_adoption_full_features, at most 100. Null: no event with a
      feature at or before as_of, or an account younger than
      health_adoption_min_age_days (it has not had the time to adopt them).
    - nps_score: 10 * the latest NPS score (0-10). Null: no NPS response, or
      the latest is older than health_nps_max_age_months.
    - support_load_score: 100 - 100 * tickets in 30 days /
      health_support_zero_score_tickets, at least 0 (fewer is better). Null:
      no ticket ever opened at or before as_of.
    - payment_history_score: 100 * share of recent invoices paid on time
      (int_invoices_rolled_to_accounts; 100 when none is due recently) minus
      health_payment_unpaid_penalty per unpaid overdue invoice, in 0-100.
      Null: no invoice due at or before as_of in the lookback, and none unpaid.
    - marketing_engagement_score: 100 * (opens, clicks and web visits in 30
      days, weighted by the health_marketing_*_points vars) /
      health_marketing_full_points, at most 100. Null: no email event and no
      web visit at or before as_of.
    Scores are rounded to 2 decimals. One row per account existing on as_of.
-#}
with

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

usage_windows as (

    select * from {{ ref('int_usage_rolled_to_account_windows') }}

),

ticket_windows as (

    select * from {{ ref('int_support_tickets_rolled_to_account_windows') }}

),

nps as (

    select * from {{ ref('int_nps_responses_rolled_to_accounts') }}

),

invoices as (

    select * from {{ ref('int_invoices_rolled_to_accounts') }}

),

interest as (

    select * from {{ ref('int_interest_rolled_to_account_windows') }}

),

joined as (

    select
        accounts.account_id,
        accounts.as_of_date,
        accounts.as_of_date - accounts.created_date as account_age_days,
        usage_windows.account_id is not null as has_usage_data,
        usage_windows.events_30d,
        usage_windows.events_prev_30d,
        usage_windows.usage_change,
        coalesce(usage_windows.has_feature_data, false) as has_feature_data,
        usage_windows.features_used_90d,
        nps.latest_score as latest_nps_score,
        nps.latest_responded_date as latest_nps_responded_date,
        ticket_windows.account_id is not null as has_ticket_data,
        ticket_windows.tickets_30d,
        invoices.invoices_due_recent,
        invoices.on_time_share,
        invoices.invoices_unpaid_overdue,
        interest.account_id is not null as has_marketing_data,
        interest.email_opens_30d,
        interest.email_clicks_30d,
        interest.web_visits_30d

    from accounts
    left join usage_windows
        on accounts.account_id = usage_windows.account_id
    left join ticket_windows
        on accounts.account_id = ticket_windows.account_id
    left join nps
        on accounts.account_id = nps.account_id
    left join invoices
        on accounts.account_id = invoices.account_id
    left join interest
        on accounts.account_id = interest.account_id

),

scored as (

    select
        *,

        case
            when not has_usage_data then null
            when account_age_days < {{ var('health_trend_min_age_days') }} then null
            when events_prev_30d > 0
                then 50 + 50 * greatest(-1, least(1, usage_change / {{ var('health_usage_full_change') }}))
            when events_30d > 0 then 100
            else 0
        end as usage_trend_raw,

        case
            when has_feature_data and coalesce(account_age_days >= {{ var('health_adoption_min_age_days') }}, true)
                then least(100, 100.0 * features_used_90d / {{ var('health_adoption_full_features') }})
        end as adoption_breadth_raw,

        case
            when latest_nps_responded_date > cast(
                {{ dbt.dateadd('month', '-1 * ' ~ var('health_nps_max_age_months'), 'as_of_date') }} as date
            )
                then 10.0 * latest_nps_score
        end as nps_raw,

        case
            when has_ticket_data
                then greatest(0, 100 - 100.0 * tickets_30d / {{ var('health_support_zero_score_tickets') }})
        end as support_load_raw,

        case
            when invoices_due_recent > 0 or invoices_unpaid_overdue > 0
                then greatest(0, least(100,
                    100 * coalesce(on_time_share, 1)
                    - {{ var('health_payment_unpaid_penalty') }} * invoices_unpaid_overdue
                ))
        end as payment_history_raw,

        case
            when has_marketing_data
                then least(100, 100.0 * (
                    {{ var('health_marketing_open_points') }} * email_opens_30d
                    + {{ var('health_marketing_click_points') }} * email_clicks_30d
                    + {{ var('health_marketing_web_visit_points') }} * web_visits_30d
                ) / {{ var('health_marketing_full_points') }})
        end as marketing_engagement_raw

    from joined

),

rounded as (

    select
        account_id,
        as_of_date,
        round(cast(usage_trend_raw as numeric), 2) as usage_trend_score,
        round(cast(adoption_breadth_raw as numeric), 2) as adoption_breadth_score,
        round(cast(nps_raw as numeric), 2) as nps_score,
        round(cast(support_load_raw as numeric), 2) as support_load_score,
        round(cast(payment_history_raw as numeric), 2) as payment_history_score,
        round(cast(marketing_engagement_raw as numeric), 2) as marketing_engagement_score,
        events_30d,
        events_prev_30d,
        features_used_90d,
        latest_nps_score,
        tickets_30d,
        on_time_share,
        invoices_unpaid_overdue

    from scored

)

select * from rounded
