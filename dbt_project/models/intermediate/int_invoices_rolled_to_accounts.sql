{#-
    Payment behaviour per account as of as_of. A payment after as_of has not
    happened yet as of as_of (so backfills are reproducible). Over invoices
    due in the last health_payment_lookback_months months (as_of - N months
    < due_date <= as_of) whose outcome is known (paid, or past due): how many
    were paid on time (paid_date <= due_date) and how many late (paid after
    the due date, or still unpaid). Unpaid overdue: every invoice due before
    as_of and unpaid on as_of. One row per account with an invoice due at or
    before as_of.
-#}
with

invoices as (

    select * from {{ ref('stg_landing__invoices') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

invoices_due as (

    select
        invoices.account_id,
        invoices.invoice_id,
        invoices.due_date,
        invoices.amount,
        case when invoices.paid_date <= run_context.as_of_date then invoices.paid_date end as paid_date,
        run_context.as_of_date,
        invoices.due_date > cast(
            {{ dbt.dateadd('month', '-1 * ' ~ var('health_payment_lookback_months'), 'run_context.as_of_date') }}
            as date
        ) as is_in_lookback

    from invoices
    cross join run_context
    where invoices.due_date <= run_context.as_of_date

),

classified as (

    select
        *,
        is_in_lookback and (paid_date is not null or due_date < as_of_date) as is_settled_or_overdue,
        paid_date <= due_date as is_paid_on_time,
        paid_date is null and due_date < as_of_date as is_unpaid_overdue

    from invoices_due

),

rolled as (

    select
        account_id,
        min(as_of_date) as as_of_date,
        count(*) filter (where is_settled_or_overdue) as invoices_due_recent,
        count(*) filter (where is_settled_or_overdue and is_paid_on_time) as invoices_paid_on_time,
        count(*) filter (where is_settled_or_overdue and not coalesce(is_paid_on_time, false)) as invoices_paid_late_or_unpaid,
        count(*) filter (where is_unpaid_overdue) as invoices_unpaid_overdue,
        coalesce(sum(amount) filter (where is_unpaid_overdue), 0) as unpaid_overdue_amount

    from classified
    group by account_id

),

shared as (

    select
        *,
        invoices_paid_on_time / cast(nullif(invoices_due_recent, 0) as numeric) as on_time_share

    from rolled

)

select * from shared
