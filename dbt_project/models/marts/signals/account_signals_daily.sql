{#-
    One row per account per day with the signals the audiences, the health
    score and the backtests read, each as of that day: only data on or before
    the day counts. History is kept: a run builds its as_of (or the days of
    `csflow signals backfill`, see the signal_days macro) and replaces those
    days only, so a year of history is one set-based pass over the daily
    rollups, not a pipeline run per day.

    How: a grid of every account and day (from 59 days before the first day,
    for the windows), the daily rollups joined onto it, and window sums over
    each account's days. Counts of distinct features, active users and
    overdue invoices are running sums of +1/-1 changes (a feature counts from
    a day it is used until 90 days after its last use, a user 30 days after
    their last activity; an invoice from the day after its due
    date until the day it is paid), with changes before the grid folded onto its
    first day. An account appears from its created_date.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'signal_date'],
        full_refresh=false,
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['account_id', 'signal_date'], 'unique': true},
            {'columns': ['signal_date']},
        ],
        pre_hook="{% if is_incremental() %}delete from {{ this }} using ({{ signal_days() }}) as days where signal_date between days.first_day and days.last_day{% endif %}",
    )
}}

{%- set interest_window = var('high_interest_window_days') %}

with

days as (

    {{ signal_days() }}

),

accounts as (

    select
        stg.account_id,
        stg.created_date,
        profiled.fx_rate_to_base

    from {{ ref('stg_landing__accounts') }} as stg
    inner join {{ ref('int_accounts_profiled') }} as profiled
        on stg.account_id = profiled.account_id
    where stg.created_date <= (select last_day from days)

),

grid as (

    select
        accounts.account_id,
        cast(day as date) as day

    from accounts
    cross join days
    cross join generate_series(days.first_day - 59, days.last_day, interval '1 day') as day

),

usage_days as (

    select
        account_id,
        activity_date as day,
        event_count,
        {%- for _, column in event_type_columns() %}
        coalesce({{ column }}, 0) as {{ column }},
        {%- endfor %}
        features,
        coalesce(users, cast(array[] as text[])) as users
    from {{ ref('int_usage_rolled_to_account_days') }}
    where activity_date between (select first_day - 89 from days) and (select last_day from days)

),

ticket_days as (

    select
        tickets.account_id,
        cast(tickets.opened_at at time zone days.timezone as date) as day,
        count(*) as tickets

    from {{ ref('stg_landing__support_tickets') }} as tickets
    cross join days
    where cast(tickets.opened_at at time zone days.timezone as date) between days.first_day - 59 and days.last_day
    group by 1, 2

),

interest_days as (

    select
        visits.account_id,
        visits.visit_date as day,
        sum(visits.visit_count) filter (where visits.page_category = 'pricing') as pricing_page_visits,
        sum(visits.visit_count) filter (
            where visits.page_category = 'product'
                and visits.max_list_price * accounts.fx_rate_to_base >= {{ var('high_price_min_list_price') }}
        ) as high_price_product_page_visits,
        0 as cross_sell_clicks

    from {{ ref('int_web_visits_rolled_to_account_days') }} as visits
    inner join accounts
        on visits.account_id = accounts.account_id
    where visits.visit_date between (select first_day - 59 from days) and (select last_day from days)
    group by 1, 2

    union all

    select
        account_id,
        event_date,
        0,
        0,
        sum(event_count)

    from {{ ref('int_email_events_rolled_to_account_days') }}
    where event = 'click'
        and product_sku is not null
        and event_date between (select first_day - 59 from days) and (select last_day from days)
    group by 1, 2

),

interest_by_day as (

    select
        account_id,
        day,
        sum(pricing_page_visits) as pricing_page_visits,
        sum(high_price_product_page_visits) as high_price_product_page_visits,
        sum(cross_sell_clicks) as cross_sell_clicks

    from interest_days
    group by 1, 2

),

item_uses as (

    -- each day a feature was used or a user was active, with the days before and after it
    -- was again; a use counts for window_days (that day and the window_days - 1 after)
    select
        usage_days.account_id,
        usage_days.day,
        item.kind,
        item.window_days,
        lag(usage_days.day) over uses as previous_use,
        lead(usage_days.day) over uses as next_use

    from usage_days
    cross join lateral (
        select 'feature' as kind, 90 as window_days, feature as name from unnest(usage_days.features) as feature
        union all
        select 'user', 30, user_id from unnest(usage_days.users) as user_id
    ) as item
    window uses as (partition by usage_days.account_id, item.kind, item.name order by usage_days.day)

),

counted_changes as (

    -- +1 on a use after window_days without one, -1 window_days after a use not
    -- followed by another within them; +1 the day after an invoice falls due
    -- unpaid, -1 the day it is paid
    select account_id, day, (kind = 'feature')::int as features, (kind = 'user')::int as users, 0 as overdue
    from item_uses
    where previous_use is null or previous_use <= day - window_days
    union all
    select account_id, day + window_days, -(kind = 'feature')::int, -(kind = 'user')::int, 0
    from item_uses
    where next_use is null or next_use > day + window_days
    union all
    select account_id, due_date + 1, 0, 0, 1 from {{ ref('stg_landing__invoices') }}
    where paid_date is null or paid_date > due_date
    union all
    select account_id, paid_date, 0, 0, -1 from {{ ref('stg_landing__invoices') }}
    where paid_date > due_date

),

changes_by_day as (

    -- changes before the grid's first day all land on it
    select
        counted_changes.account_id,
        greatest(counted_changes.day, days.first_day - 59) as day,
        sum(counted_changes.features) as features,
        sum(counted_changes.users) as users,
        sum(counted_changes.overdue) as overdue

    from counted_changes
    cross join days
    where counted_changes.day <= days.last_day
    group by 1, 2

),

nps_responses as (

    select
        responses.account_id,
        cast(responses.responded_at at time zone days.timezone as date) as day,
        responses.score,
        row_number() over (
            partition by responses.account_id, cast(responses.responded_at at time zone days.timezone as date)
            order by responses.responded_at desc, responses.response_id desc
        ) as latest_of_day

    from {{ ref('int_survey_responses_unioned') }} as responses
    cross join days
    where responses.survey_type = 'nps'
        and cast(responses.responded_at at time zone days.timezone as date) <= days.last_day

),

nps_by_day as (

    -- responses before the grid land on its first day: the latest one per day is kept
    select account_id, day, score, responded_date
    from (
        select
            account_id,
            greatest(day, (select first_day - 59 from days)) as day,
            score,
            day as responded_date,
            row_number() over (
                partition by account_id, greatest(day, (select first_day - 59 from days)) order by day desc
            ) as latest
        from nps_responses
        where latest_of_day = 1
    ) as folded
    where latest = 1

),

joined as (

    select
        grid.account_id,
        grid.day,
        coalesce(usage_days.event_count, 0) as events,
        {%- for _, column in event_type_columns() %}
        coalesce(usage_days.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        coalesce(ticket_days.tickets, 0) as tickets,
        coalesce(interest_by_day.pricing_page_visits, 0) as pricing_page_visits,
        coalesce(interest_by_day.high_price_product_page_visits, 0) as high_price_product_page_visits,
        coalesce(interest_by_day.cross_sell_clicks, 0) as cross_sell_clicks,
        coalesce(changes_by_day.features, 0) as feature_change,
        coalesce(changes_by_day.users, 0) as user_change,
        coalesce(changes_by_day.overdue, 0) as overdue_change,
        nps_by_day.score as nps_score,
        nps_by_day.responded_date as nps_date

    from grid
    left join usage_days
        on grid.account_id = usage_days.account_id and grid.day = usage_days.day
    left join ticket_days
        on grid.account_id = ticket_days.account_id and grid.day = ticket_days.day
    left join interest_by_day
        on grid.account_id = interest_by_day.account_id and grid.day = interest_by_day.day
    left join changes_by_day
        on grid.account_id = changes_by_day.account_id and grid.day = changes_by_day.day
    left join nps_by_day
        on grid.account_id = nps_by_day.account_id and grid.day = nps_by_day.day

),

windowed as (

    select
        account_id,
        day,
        sum(events) over last_30 as events_30d,
        coalesce(sum(events) over previous_30, 0) as events_prev_30d,
        {%- for _, column in event_type_columns() %}
        sum({{ column }}) over last_30 as {{ column }}_30d,
        {%- endfor %}
        sum(tickets) over last_30 as tickets_30d,
        coalesce(sum(tickets) over previous_30, 0) as tickets_prev_30d,
        sum(pricing_page_visits) over interest as pricing_page_visits,
        sum(high_price_product_page_visits) over interest as high_price_product_page_visits,
        sum(cross_sell_clicks) over interest as cross_sell_clicks,
        sum(feature_change) over to_date as features_used_90d,
        sum(user_change) over to_date as active_users_30d,
        sum(overdue_change) over to_date as overdue_invoices,
        nps_score,
        nps_date,
        -- the latest NPS response is carried forward from the last day that had one
        count(nps_score) over to_date as nps_run

    from joined
    window
        by_day as (partition by account_id order by day),
        last_30 as (by_day rows between 29 preceding and current row),
        previous_30 as (by_day rows between 59 preceding and 30 preceding),
        interest as (by_day rows between {{ interest_window - 1 }} preceding and current row),
        to_date as (by_day rows between unbounded preceding and current row)

),

carried as (

    select
        *,
        -- the users active in the 30 days before the last 30: the count as it stood 30 days earlier
        lag(active_users_30d, 30) over (partition by account_id order by day) as active_users_prev_30d,
        first_value(nps_score) over (partition by account_id, nps_run order by day) as nps_score_latest,
        first_value(nps_date) over (partition by account_id, nps_run order by day) as nps_latest_date

    from windowed

),

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

renewals as (

    -- the contract running on the day that ends last: its end and the ARR running that day
    select
        carried.account_id,
        carried.day,
        max(contracts.end_date) as renewal_date,
        sum(contracts.arr) as arr

    from carried
    inner join contracts
        on carried.account_id = contracts.account_id
        and carried.day between contracts.start_date and contracts.end_date
    where carried.day >= (select first_day from days)
    group by 1, 2

),

signals as (

    select
        carried.account_id,
        carried.day as signal_date,
        carried.day - accounts.created_date as account_age_days,
        cast(carried.events_30d as bigint) as events_30d,
        cast(carried.events_prev_30d as bigint) as events_prev_30d,
        {%- for _, column in event_type_columns() %}
        cast(carried.{{ column }}_30d as bigint) as {{ column }}_30d,
        {%- endfor %}
        cast(carried.active_users_30d as bigint) as active_users_30d,
        cast(coalesce(carried.active_users_prev_30d, 0) as bigint) as active_users_prev_30d,
        case
            when carried.events_prev_30d > 0
                then (carried.events_30d - carried.events_prev_30d) / cast(carried.events_prev_30d as numeric)
        end as usage_change,
        cast(carried.features_used_90d as bigint) as features_used_90d,
        cast(carried.tickets_30d as bigint) as tickets_30d,
        cast(carried.tickets_prev_30d as bigint) as tickets_prev_30d,
        carried.nps_score_latest,
        carried.day - carried.nps_latest_date as nps_age_days,
        cast(carried.overdue_invoices as bigint) as overdue_invoices,
        cast(carried.pricing_page_visits as bigint) as pricing_page_visits,
        cast(carried.high_price_product_page_visits as bigint) as high_price_product_page_visits,
        cast(carried.cross_sell_clicks as bigint) as cross_sell_clicks,
        renewals.renewal_date - carried.day as days_to_renewal,
        round(renewals.arr * accounts.fx_rate_to_base, 2) as arr_base

    from carried
    inner join accounts
        on carried.account_id = accounts.account_id
    left join renewals
        on carried.account_id = renewals.account_id and carried.day = renewals.day
    where carried.day >= (select first_day from days)
        and carried.day >= accounts.created_date

)

select * from signals
