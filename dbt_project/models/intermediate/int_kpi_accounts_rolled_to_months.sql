{#-
    One row per account per month for the accounts active on the month's
    first day: their ARR (base currency) then and at the month's close, and
    whether they churned during the month.

    - Active on day d: a contract covers d (int_contracts_converted_to_base).
    - ARR at close: contracts covering the month's close_date (first day of
      the next month, or as_of in as_of's month); new contracts of the account
      that started during the month count (expansion).
    - Churned: not covered at close_date, and a contract of the account that
      covered part of the month is `churned`. A coverage gap that only
      `renewed` contracts left (no renewal in the data) is a lapse, not churn.
-#}
with

contracts as (

    select * from {{ ref('int_contracts_converted_to_base') }}

),

months as (

    select * from {{ ref('int_kpi_months_spined') }}

),

starts_covered as (

    select
        months.month_start,
        contracts.account_id,
        sum(contracts.arr_base) as arr_start_base

    from months
    inner join contracts
        on contracts.start_date <= months.month_start
        and contracts.coverage_end_date >= months.month_start

    group by months.month_start, contracts.account_id

),

closes_covered as (

    select
        months.month_start,
        contracts.account_id,
        sum(contracts.arr_base) as arr_close_base

    from months
    inner join contracts
        on contracts.start_date <= months.close_date
        and contracts.coverage_end_date >= months.close_date

    group by months.month_start, contracts.account_id

),

churns_flagged as (

    -- contracts that covered some day of [month_start, close_date)
    select
        months.month_start,
        contracts.account_id,
        bool_or(contracts.status = 'churned') as has_churned_contract

    from months
    inner join contracts
        on contracts.start_date < months.close_date
        and contracts.coverage_end_date >= months.month_start

    group by months.month_start, contracts.account_id

),

accounts_rolled as (

    select
        starts_covered.month_start,
        starts_covered.account_id,
        starts_covered.arr_start_base,
        coalesce(closes_covered.arr_close_base, 0) as arr_end_base,
        closes_covered.account_id is not null as is_active_at_close,
        closes_covered.account_id is null
            and coalesce(churns_flagged.has_churned_contract, false) as is_churned

    from starts_covered
    left join closes_covered
        on starts_covered.month_start = closes_covered.month_start
        and starts_covered.account_id = closes_covered.account_id
    left join churns_flagged
        on starts_covered.month_start = churns_flagged.month_start
        and starts_covered.account_id = churns_flagged.account_id

)

select * from accounts_rolled
