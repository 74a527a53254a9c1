{#-
    One row per active contract (status = 'active') of a known account that
    has started by as_of. Renewed and churned contracts are left out, and so
    are contracts that start after as_of (data after as_of never counts; the
    contract in force is the one that renews).

    renewal_window bands follow their labels (2, 4, 6 calendar months after
    as_of); is_in_upsell_window and is_in_target_window use the vars
    renewal_upsell_window_* and renewal_target_window_* (inclusive bounds).
-#}

{{ config(indexes=[{'columns': ['contract_id'], 'unique': true}, {'columns': ['account_id']}]) }}

with

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

as_of_read as (

    -- no FROM: the planner knows this is one row (ops.run_context has no
    -- statistics, and a guess of hundreds of rows would spoil every join)
    select (select as_of_date from run_context) as as_of_date

),

windows_bounded as (

    -- calendar months: 2026-10-31 + 4 months = 2027-02-28
    select
        as_of_date,
        cast({{ dbt.dateadd('month', 2, 'as_of_date') }} as date) as plus_2m_date,
        cast({{ dbt.dateadd('month', 4, 'as_of_date') }} as date) as plus_4m_date,
        cast({{ dbt.dateadd('month', 6, 'as_of_date') }} as date) as plus_6m_date,
        cast({{ dbt.dateadd('month', var('renewal_upsell_window_start_months'), 'as_of_date') }} as date)
            as upsell_start_date,
        cast({{ dbt.dateadd('month', var('renewal_upsell_window_end_months'), 'as_of_date') }} as date)
            as upsell_end_date,
        cast({{ dbt.dateadd('month', var('renewal_target_window_start_months'), 'as_of_date') }} as date)
            as target_start_date,
        cast({{ dbt.dateadd('month', var('renewal_target_window_end_months'), 'as_of_date') }} as date)
            as target_end_date

    from as_of_read

),

contracts_filtered as (

    select
        contracts.contract_id,
        contracts.account_id,
        contracts.end_date,
        contracts.plan,
        contracts.arr,
        contracts.currency,
        contracts.is_auto_renew

    from contracts
    inner join accounts
        on contracts.account_id = accounts.account_id
    cross join as_of_read

    where contracts.status = 'active'
        and contracts.start_date <= as_of_read.as_of_date

),

contracts_classified as (

    select
        contracts_filtered.contract_id,
        contracts_filtered.account_id,
        contracts_filtered.end_date,
        contracts_filtered.end_date - windows_bounded.as_of_date as days_to_renewal,
        case
            when contracts_filtered.end_date < windows_bounded.as_of_date then 'overdue'
            when contracts_filtered.end_date < windows_bounded.plus_2m_date then '0-2m'
            when contracts_filtered.end_date <= windows_bounded.plus_4m_date then '2-4m'
            when contracts_filtered.end_date <= windows_bounded.plus_6m_date then '4-6m'
            else '6m+'
        end as renewal_window,
        contracts_filtered.end_date between windows_bounded.upsell_start_date
            and windows_bounded.upsell_end_date as is_in_upsell_window,
        contracts_filtered.end_date between windows_bounded.target_start_date
            and windows_bounded.target_end_date as is_in_target_window,
        contracts_filtered.plan,
        contracts_filtered.arr,
        contracts_filtered.currency,
        contracts_filtered.is_auto_renew

    from contracts_filtered
    cross join windows_bounded

)

select * from contracts_classified
