{#-
    Web visits rolled up to one row per account, day (in the run's time
    zone), page category and product. Incremental like
    int_usage_rolled_to_account_days: only the (account, day) pairs that rows
    of new loads fall on are recomputed and replaced (delete+insert on
    account_id, visit_date; the rows of a day are replaced together).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'visit_date'],
        indexes=[
            {'columns': ['account_id', 'visit_date']},
            {'columns': ['max_load_id']},
        ],
        pre_hook="{{ delete_if_timezone_changed() }}",
    )
}}

with

web_visits as not materialized (

    -- read twice (new rows, then whole touched days): inline it, or PostgreSQL
    -- would first copy every raw row to a temporary file
    select * from {{ ref('stg_landing__web_visits') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

{{ days_touched_by_new_loads('web_visits', 'visited_at', 'visit_date') }}

dated_visits as (

    select
        web_visits.account_id,
        cast(web_visits.visited_at at time zone run_context.timezone as date) as visit_date,
        web_visits.page_category,
        web_visits.product_sku,
        web_visits.list_price,
        web_visits.load_id,
        run_context.timezone

    from web_visits
    cross join run_context

),

visits_in_scope as (

    select * from dated_visits
    {{ only_touched_days('visit_date') }}

),

rolled as (

    select
        account_id,
        visit_date,
        page_category,
        product_sku,
        count(*) as visit_count,
        max(list_price) as max_list_price,
        max(load_id) as max_load_id,
        min(timezone) as timezone

    from visits_in_scope
    group by account_id, visit_date, page_category, product_sku

)

select * from rolled
