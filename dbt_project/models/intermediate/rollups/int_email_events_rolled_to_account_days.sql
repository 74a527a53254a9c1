{#-
    Marketing email events rolled up to one row per account, day (in the
    run's time zone), event and promoted product. Incremental like
    int_usage_rolled_to_account_days: only the (account, day) pairs that rows
    of new loads fall on are recomputed and replaced (delete+insert on
    account_id, event_date; the rows of a day are replaced together).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'event_date'],
        indexes=[
            {'columns': ['account_id', 'event_date']},
            {'columns': ['max_load_id']},
        ],
        pre_hook="{{ delete_if_timezone_changed() }}",
    )
}}

with

email_events as not materialized (

    -- read twice (new rows, then whole touched days): inline it, or PostgreSQL
    -- would first copy every raw row to a temporary file
    select * from {{ ref('stg_landing__email_events') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

{{ days_touched_by_new_loads('email_events', 'occurred_at', 'event_date') }}

dated_events as (

    select
        email_events.account_id,
        cast(email_events.occurred_at at time zone run_context.timezone as date) as event_date,
        email_events.event,
        email_events.product_sku,
        email_events.load_id,
        run_context.timezone

    from email_events
    cross join run_context

),

events_in_scope as (

    select * from dated_events
    {{ only_touched_days('event_date') }}

),

rolled as (

    select
        account_id,
        event_date,
        event,
        product_sku,
        count(*) as event_count,
        max(load_id) as max_load_id,
        min(timezone) as timezone

    from events_in_scope
    group by account_id, event_date, event, product_sku

)

select * from rolled
