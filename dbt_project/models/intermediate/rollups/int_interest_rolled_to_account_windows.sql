{#-
    Marketing engagement and buying interest per account over windows ending
    on as_of. Engagement: email opens, clicks and web visits in the last 30
    days. Interest, in the last high_interest_window_days days: visits to
    pricing pages and to high-price product pages (page_category product
    whose list_price, converted to base_currency, is at least
    high_price_min_list_price), and clicks on cross-sell emails (emails that
    promote a product: product_sku set). The product of interest is the
    product with the most of those signals (then the latest, then by sku).
    One row per account with any web visit or email event at or before as_of.
-#}
with

web_visit_days as (

    select * from {{ ref('int_web_visits_rolled_to_account_days') }}

),

email_event_days as (

    select * from {{ ref('int_email_events_rolled_to_account_days') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

orders as (

    select * from {{ ref('stg_landing__orders') }}

),

visits_up_to_as_of as (

    select
        web_visit_days.account_id,
        web_visit_days.visit_date as signal_date,
        web_visit_days.product_sku,
        web_visit_days.visit_count,
        accounts.as_of_date - web_visit_days.visit_date as days_ago,
        web_visit_days.page_category = 'pricing' as is_pricing_page,
        coalesce(
            web_visit_days.page_category = 'product'
            and web_visit_days.max_list_price * accounts.fx_rate_to_base
                >= {{ var('high_price_min_list_price') }},
            false
        ) as is_high_price_product_page

    from web_visit_days
    inner join accounts
        on web_visit_days.account_id = accounts.account_id
    where web_visit_days.visit_date <= accounts.as_of_date

),

email_events_up_to_as_of as (

    select
        email_event_days.account_id,
        email_event_days.event_date as signal_date,
        email_event_days.event,
        email_event_days.product_sku,
        email_event_days.event_count,
        accounts.as_of_date - email_event_days.event_date as days_ago

    from email_event_days
    inner join accounts
        on email_event_days.account_id = accounts.account_id
    where email_event_days.event_date <= accounts.as_of_date

),

web_rolled as (

    select
        account_id,
        coalesce(sum(visit_count) filter (where days_ago < 30), 0) as web_visits_30d,
        coalesce(sum(visit_count) filter (
            where days_ago < {{ var('high_interest_window_days') }} and is_pricing_page
        ), 0) as pricing_page_visits,
        coalesce(sum(visit_count) filter (
            where days_ago < {{ var('high_interest_window_days') }} and is_high_price_product_page
        ), 0) as high_price_product_page_visits

    from visits_up_to_as_of
    group by account_id

),

email_rolled as (

    select
        account_id,
        coalesce(sum(event_count) filter (where days_ago < 30 and event = 'open'), 0) as email_opens_30d,
        coalesce(sum(event_count) filter (where days_ago < 30 and event = 'click'), 0) as email_clicks_30d,
        coalesce(sum(event_count) filter (
            where days_ago < {{ var('high_interest_window_days') }}
                and event = 'click'
                and product_sku is not null
        ), 0) as cross_sell_clicks

    from email_events_up_to_as_of
    group by account_id

),

interest_signals as (

    select account_id, product_sku, signal_date, visit_count as signal_count
    from visits_up_to_as_of
    where days_ago < {{ var('high_interest_window_days') }}
        and (is_pricing_page or is_high_price_product_page)
        and product_sku is not null

    union all

    select account_id, product_sku, signal_date, event_count as signal_count
    from email_events_up_to_as_of
    where days_ago < {{ var('high_interest_window_days') }}
        and event = 'click'
        and product_sku is not null

),

ranked_products as (

    select
        account_id,
        product_sku,
        row_number() over (
            partition by account_id
            order by sum(signal_count) desc, max(signal_date) desc, product_sku
        ) as product_rank

    from interest_signals
    group by account_id, product_sku

),

named_products as (

    -- the name orders most often give a sku (ties: the first by name)
    select
        product_sku,
        mode() within group (order by product_name) as product_name

    from orders
    where product_sku is not null
        and product_name is not null
    group by product_sku

),

joined as (

    select
        accounts.account_id,
        accounts.as_of_date,
        coalesce(web_rolled.web_visits_30d, 0) as web_visits_30d,
        coalesce(email_rolled.email_opens_30d, 0) as email_opens_30d,
        coalesce(email_rolled.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(web_rolled.pricing_page_visits, 0) as pricing_page_visits,
        coalesce(web_rolled.high_price_product_page_visits, 0) as high_price_product_page_visits,
        coalesce(web_rolled.pricing_page_visits, 0)
            + coalesce(web_rolled.high_price_product_page_visits, 0) as interest_page_visits,
        coalesce(email_rolled.cross_sell_clicks, 0) as cross_sell_clicks,
        ranked_products.product_sku as product_of_interest_sku,
        coalesce(named_products.product_name, ranked_products.product_sku) as product_of_interest_name

    from accounts
    left join web_rolled
        on accounts.account_id = web_rolled.account_id
    left join email_rolled
        on accounts.account_id = email_rolled.account_id
    left join ranked_products
        on accounts.account_id = ranked_products.account_id
        and ranked_products.product_rank = 1
    left join named_products
        on ranked_products.product_sku = named_products.product_sku
    where web_rolled.account_id is not null
        or email_rolled.account_id is not null

),

flagged as (

    select
        *,
        {{ high_interest_rule('joined') }} as is_high_interest

    from joined

)

select * from flagged
