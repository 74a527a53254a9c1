{#-
    renewal_alert: active contracts (started by as_of) whose end_date lies
    in the window renewal_upsell_window_start_months ..
    renewal_upsell_window_end_months calendar months after as_of (bounds
    inclusive; 2-4 by default). One row per contract; the occasion is the
    contract's end date, so a contract fires once per term.
-#}
with

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

contracts_in_window as (

    select
        contracts.*,
        accounts.as_of_date

    from contracts
    inner join accounts
        on contracts.account_id = accounts.account_id
    where contracts.status = 'active'
        and contracts.start_date <= accounts.as_of_date
        and contracts.end_date >= cast(
            {{ dbt.dateadd('month', var('renewal_upsell_window_start_months'), 'accounts.as_of_date') }} as date
        )
        and contracts.end_date <= cast(
            {{ dbt.dateadd('month', var('renewal_upsell_window_end_months'), 'accounts.as_of_date') }} as date
        )

),

audience as (

    select
        'renewal_alert' as playbook,
        contracts_in_window.account_id,
        cast(null as text) as contact_id,
        contracts_in_window.contract_id || ':' || cast(contracts_in_window.end_date as text) as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        contracts_in_window.as_of_date,
        contracts_in_window.contract_id,
        contracts_in_window.plan,
        contracts_in_window.end_date,
        contracts_in_window.end_date - contracts_in_window.as_of_date as days_to_renewal,
        contracts_in_window.arr,
        accounts.currency,
        round(contracts_in_window.arr * accounts.fx_rate_to_base, 2) as arr_base,
        contracts_in_window.is_auto_renew

    from contracts_in_window
    inner join accounts
        on contracts_in_window.account_id = accounts.account_id
    inner join segments
        on contracts_in_window.account_id = segments.account_id

)

select * from audience
