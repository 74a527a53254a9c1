{#-
    One row per account that exists on as_of (created_date <= as_of), with
    what every health, segment and audience model needs about it: the CSM,
    the account currency and its rate to base_currency, and whether the
    account is still a customer.
-#}
with

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

existing_accounts as (

    select
        accounts.account_id,
        accounts.account_name,
        accounts.owner_email,
        accounts.created_date,
        run_context.as_of_date

    from accounts
    cross join run_context
    where accounts.created_date <= run_context.as_of_date

),

ranked_currencies as (

    -- the account currency is the currency of its latest contract that names one
    select
        account_id,
        currency,
        row_number() over (
            partition by account_id
            order by start_date desc, end_date desc, contract_id desc
        ) as currency_rank

    from contracts
    where currency is not null

),

ranked_contracts as (

    -- the latest contract started by as_of decides whether the account churned
    select
        contracts.account_id,
        contracts.status,
        row_number() over (
            partition by contracts.account_id
            order by contracts.end_date desc, contracts.start_date desc, contracts.contract_id desc
        ) as contract_rank

    from contracts
    cross join run_context
    where contracts.start_date <= run_context.as_of_date

),

active_contracts as (

    select distinct contracts.account_id

    from contracts
    cross join run_context
    where contracts.status = 'active'
        and contracts.start_date <= run_context.as_of_date

),

joined as (

    select
        existing_accounts.account_id,
        existing_accounts.account_name,
        existing_accounts.owner_email,
        existing_accounts.created_date,
        existing_accounts.as_of_date,
        coalesce(ranked_currencies.currency, '{{ var("base_currency") }}') as currency,
        coalesce(ranked_contracts.status = 'churned', false) as is_churned,
        active_contracts.account_id is not null as has_active_contract

    from existing_accounts
    left join ranked_currencies
        on existing_accounts.account_id = ranked_currencies.account_id
        and ranked_currencies.currency_rank = 1
    left join ranked_contracts
        on existing_accounts.account_id = ranked_contracts.account_id
        and ranked_contracts.contract_rank = 1
    left join active_contracts
        on existing_accounts.account_id = active_contracts.account_id

),

converted as (

    -- null rate: a currency fx_to_base does not list, so amounts stay unknown
    select
        *,
        case currency
            {%- for code, rate in var('fx_to_base').items() %}
            when '{{ code }}' then cast({{ rate }} as numeric)
            {%- endfor %}
        end as fx_rate_to_base

    from joined

)

select * from converted
