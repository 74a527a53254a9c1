{#-
    The calendar months kpi_monthly reports: from the month of the earliest
    contract start (at most var('kpi_monthly_max_months') months back) up to
    as_of's month. Months entirely after as_of are never listed.

    month_end_date is the last day whose data counts (as_of in as_of's own
    month); close_date is the day on which the month's closing state is read:
    the first day of the next month for a complete month (so a contract that
    ends on the month's last day no longer counts), as_of for as_of's month.
-#}
with

contracts as (

    select * from {{ ref('int_contracts_converted_to_base') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

first_start_found as (

    select
        coalesce(min(start_date), (select as_of_date from run_context)) as first_start_date,
        (select as_of_date from run_context) as as_of_date

    from contracts

),

range_bounded as (

    select
        greatest(
            cast({{ dbt.date_trunc('month', 'first_start_date') }} as date),
            cast({{ dbt.dateadd(
                'month',
                1 - var('kpi_monthly_max_months') | int,
                dbt.date_trunc('month', 'as_of_date'),
            ) }} as date)
        ) as first_month,
        cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as last_month,
        as_of_date

    from first_start_found

),

months_spined as (

    select
        cast(months.month_start as date) as month_start,
        range_bounded.as_of_date

    from range_bounded
    cross join lateral generate_series(
        cast(range_bounded.first_month as timestamp),
        cast(range_bounded.last_month as timestamp),
        interval '1 month'
    ) as months (month_start)

),

months_dated as (

    select
        month_start,
        least(
            cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) - 1,
            as_of_date
        ) as month_end_date,
        least(
            cast({{ dbt.dateadd('month', 1, 'month_start') }} as date),
            as_of_date
        ) as close_date,
        cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) <= as_of_date as is_complete_month

    from months_spined

)

select * from months_dated
