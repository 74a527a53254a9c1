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

{% if is_incremental() %}

rolled_up_loads as (

    select coalesce(max(max_load_id), 0) as max_load_id
    from {{ this }}

),

touched_days as (

    select distinct
        email_events.account_id,
        cast(email_events.occurred_at at time zone run_context.timezone as date) as event_date

    from email_events
    cross join run_context
    where email_events.load_id > (select max_load_id from rolled_up_loads)

),

{% endif %}

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
    {% if is_incremental() %}
    where (account_id, event_date) in (select account_id, event_date from touched_days)
    {% endif %}

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
