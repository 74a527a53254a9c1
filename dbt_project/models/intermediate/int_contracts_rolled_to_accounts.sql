{#-
    The currency of each account that holds contracts: the currency of its
    latest contract that names one, preferring contracts started by as_of
    (a contract that starts later only decides when no earlier one names a
    currency), and var('base_currency') when none does.
-#}
with

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

contracts_ranked as (

    select
        contracts.account_id,
        contracts.currency,
        row_number() over (
            partition by contracts.account_id
            order by
                (contracts.currency is not null) desc,
                (contracts.start_date <= (select as_of_date from run_context)) desc,
                contracts.start_date desc,
                contracts.contract_id desc
        ) as currency_rank

    from contracts

),

currencies_picked as (

    select
        account_id,
        coalesce(currency, '{{ var("base_currency") }}') as currency

    from contracts_ranked

    where currency_rank = 1

)

select * from currencies_picked
