{#-
    One row per account per week for the 13 weeks up to as_of (each week ends
    on as_of or a multiple of 7 days before it), with the usage events in it:
    the workspace's usage trend. Accounts with no usage in the 13 weeks have
    no rows.
-#}

{{ config(indexes=[{'columns': ['account_id', 'week_end_date'], 'unique': true}]) }}

with

usage_days as (

    select * from {{ ref('int_usage_rolled_to_account_days') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

weeks as (

    select
        cast((select as_of_date from run_context) - 7 * week_number as date) as week_end_date
    from generate_series(0, 12) as week_number

),

recent_days as (

    select
        account_id,
        activity_date,
        event_count

    from usage_days
    where activity_date <= (select as_of_date from run_context)
        and activity_date > (select as_of_date from run_context) - 91

),

accounts_with_usage as (

    select distinct account_id
    from recent_days

),

weekly as (

    select
        accounts_with_usage.account_id,
        weeks.week_end_date,
        coalesce(sum(recent_days.event_count), 0) as event_count

    from accounts_with_usage
    cross join weeks
    left join recent_days
        on recent_days.account_id = accounts_with_usage.account_id
        and recent_days.activity_date > weeks.week_end_date - 7
        and recent_days.activity_date <= weeks.week_end_date
    group by accounts_with_usage.account_id, weeks.week_end_date

)

select * from weekly
