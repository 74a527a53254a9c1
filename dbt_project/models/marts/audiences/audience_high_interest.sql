{#-
    high_interest: accounts (not churned) with at least
    high_interest_min_page_visits pricing / high-price product page visits,
    or at least high_interest_min_cross_sell_clicks cross-sell email clicks,
    in the last high_interest_window_days days
    (int_interest_rolled_to_account_windows), naming the product of
    interest. One row per account; the occasion is as_of's ISO week.
-#}
with

interest as (

    select * from {{ ref('int_interest_rolled_to_account_windows') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

interested_accounts as (

    select * from interest
    where is_high_interest

),

audience as (

    select
        'high_interest' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        accounts.account_id || ':' || to_char(accounts.as_of_date, 'IYYY-"W"IW') as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        interested_accounts.pricing_page_visits,
        interested_accounts.high_price_product_page_visits,
        interested_accounts.interest_page_visits,
        interested_accounts.cross_sell_clicks,
        interested_accounts.product_of_interest_sku,
        interested_accounts.product_of_interest_name,
        {{ var('high_interest_window_days') }} as interest_window_days

    from interested_accounts
    inner join accounts
        on interested_accounts.account_id = accounts.account_id
    inner join segments
        on interested_accounts.account_id = segments.account_id
    where not accounts.is_churned

)

select * from audience
