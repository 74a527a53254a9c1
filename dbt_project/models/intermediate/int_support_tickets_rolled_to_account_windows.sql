{#-
    Support tickets per account by the day they were opened (in the run's
    time zone): the last 30 days (as_of - 29 .. as_of), the 30 before
    (as_of - 59 .. as_of - 30) and all up to as_of. One row per account with
    any ticket opened at or before as_of.
-#}
with

support_tickets as (

    select * from {{ ref('stg_landing__support_tickets') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

dated_tickets as (

    select
        support_tickets.account_id,
        support_tickets.ticket_id,
        run_context.as_of_date,
        run_context.as_of_date
            - cast(support_tickets.opened_at at time zone run_context.timezone as date) as days_ago

    from support_tickets
    cross join run_context

),

rolled as (

    select
        account_id,
        min(as_of_date) as as_of_date,
        count(*) filter (where days_ago < 30) as tickets_30d,
        count(*) filter (where days_ago between 30 and 59) as tickets_prev_30d,
        count(*) as tickets_to_date

    from dated_tickets
    where days_ago >= 0
    group by account_id

)

select * from rolled
