{#-
    renewal_alert: active contracts in the upsell window (renewal_windows'
    is_in_upsell_window: renewal_upsell_window_start_months ..
    renewal_upsell_window_end_months calendar months after as_of, bounds
    inclusive; 2-4 by default). One row per contract; the occasion is the
    contract's end date, so a contract fires once per term. Each row carries
    the window's bounds, so an email that states the window says what the
    vars say.
-#}
with

windows as (

    select * from {{ ref('renewal_windows') }}

),

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
        accounts.as_of_date,
        windows.days_to_renewal

    from windows
    inner join contracts
        on windows.contract_id = contracts.contract_id
    inner join accounts
        on windows.account_id = accounts.account_id
    where windows.is_in_upsell_window

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
        contracts_in_window.days_to_renewal,
        {{ var('renewal_upsell_window_start_months') }} as upsell_window_start_months,
        {{ var('renewal_upsell_window_end_months') }} as upsell_window_end_months,
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
