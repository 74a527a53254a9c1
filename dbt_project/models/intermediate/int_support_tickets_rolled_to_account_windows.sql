{#-
    Support tickets per account by the day they were opened (in the run's
    time zone): the last 30 days (as_of - 29 .. as_of) and the 30 before
    (as_of - 59 .. as_of - 30) are as_of's row of account_signals_daily (one
    definition, which backtests replay); all up to as_of is counted here.
    One row per account with any ticket opened at or before as_of.
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
        count(*) as tickets_to_date

    from dated_tickets
    where days_ago >= 0
    group by account_id

),

signals as (

    select signals.*
    from {{ ref('account_signals_daily') }} as signals
    where signals.signal_date = (select as_of_date from run_context)

),

windowed as (

    select
        rolled.account_id,
        rolled.as_of_date,
        coalesce(signals.tickets_30d, 0) as tickets_30d,
        coalesce(signals.tickets_prev_30d, 0) as tickets_prev_30d,
        rolled.tickets_to_date

    from rolled
    left join signals
        on rolled.account_id = signals.account_id

)

select * from windowed
