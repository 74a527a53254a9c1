{#-
    Contracts of known accounts started at or before as_of, with ARR in
    var('base_currency') and the last day each one keeps its account covered
    (coverage_end_date), for the KPIs that compare and sum across accounts.

    Coverage: a contract covers day d when start_date <= d <= coverage_end_date.
    - churned: up to end_date;
    - renewed: up to end_date, bridged to the day before the account's next
      contract starts when there is a gap (renewed means it continued);
    - active: up to end_date, or up to as_of when end_date has passed (an
      overdue renewal is still a customer until the contract is marked churned).
-#}
with

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

account_currencies as (

    select * from {{ ref('int_contracts_rolled_to_accounts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

fx_rates as (

    {{ fx_rates() }}

),

contracts_sequenced as (

    -- before filtering on as_of: a renewal that starts after as_of still
    -- tells that the renewed contract continued
    select
        contracts.*,
        lead(contracts.start_date) over (
            partition by contracts.account_id
            order by contracts.start_date, contracts.contract_id
        ) as next_start_date

    from contracts

),

contracts_started as (

    select
        contracts_sequenced.*,
        (select as_of_date from run_context) as as_of_date

    from contracts_sequenced
    inner join accounts
        on contracts_sequenced.account_id = accounts.account_id

    where contracts_sequenced.start_date <= (select as_of_date from run_context)

),

contracts_converted as (

    select
        contracts_started.contract_id,
        contracts_started.account_id,
        contracts_started.plan,
        contracts_started.status,
        contracts_started.start_date,
        contracts_started.end_date,
        case
            when contracts_started.status = 'active'
                then greatest(contracts_started.end_date, contracts_started.as_of_date)
            when contracts_started.status = 'renewed' and contracts_started.next_start_date is not null
                then greatest(contracts_started.end_date, contracts_started.next_start_date - 1)
            else contracts_started.end_date
        end as coverage_end_date,
        coalesce(
            contracts_started.currency,
            account_currencies.currency,
            '{{ var("base_currency") }}'
        ) as currency,
        contracts_started.arr,
        contracts_started.arr * fx_rates.rate_to_base as arr_base,
        contracts_started.as_of_date

    from contracts_started
    left join account_currencies
        on contracts_started.account_id = account_currencies.account_id
    left join fx_rates
        on fx_rates.currency = coalesce(
            contracts_started.currency,
            account_currencies.currency,
            '{{ var("base_currency") }}'
        )

)

select * from contracts_converted
