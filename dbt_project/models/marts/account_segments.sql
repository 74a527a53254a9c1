{#-
    One row per account existing on as_of: who to prioritise and how to
    serve them.
    - ltv: total spend in base_currency (orders at or before as_of); for an
      account without orders, the ARR of its contracts started by as_of.
    - priority: high (top segments_top_spender_share of accounts by order
      spend, or a growing buyer), else medium (high interest: pricing /
      high-price product page visits or cross-sell email clicks), else low
      (heavy support need: segments_heavy_support_tickets_30d tickets in 30
      days), else none.
    - touch_tier by ltv rank (ties share a rank): top
      segments_high_touch_share high_touch, then up to
      segments_low_touch_share low_touch, the rest (and unknown ltv) tech_touch.
-#}

{{ config(indexes=[{'columns': ['account_id'], 'unique': true}]) }}

with

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

spend as (

    select * from {{ ref('int_spend_rolled_to_accounts') }}

),

usage_windows as (

    select * from {{ ref('int_usage_rolled_to_account_windows') }}

),

interest as (

    select * from {{ ref('int_interest_rolled_to_account_windows') }}

),

ticket_windows as (

    select * from {{ ref('int_support_tickets_rolled_to_account_windows') }}

),

usage_known as (

    -- usage counts are 0 for an account without events, unless no usage data was loaded at all
    select count(*) > 0 as has_usage_data
    from usage_windows

),

joined as (

    select
        accounts.account_id,
        spend.order_amount_base,
        coalesce(spend.order_amount_base, spend.contract_value_base) as ltv,
        spend.is_growing_buyer,
        coalesce(interest.is_high_interest, false) as is_high_interest,
        coalesce(ticket_windows.tickets_30d, 0) as tickets_30d,
        case
            when usage_known.has_usage_data then cast(coalesce(usage_windows.features_used_90d, 0) as integer)
        end as features_used_90d,
        case
            when usage_known.has_usage_data then coalesce(usage_windows.events_30d, 0)
        end as events_30d

    from accounts
    cross join usage_known
    left join spend
        on accounts.account_id = spend.account_id
    left join usage_windows
        on accounts.account_id = usage_windows.account_id
    left join interest
        on accounts.account_id = interest.account_id
    left join ticket_windows
        on accounts.account_id = ticket_windows.account_id

),

ranked as (

    select
        *,
        count(*) over () as account_count,
        case
            when order_amount_base > 0
                then rank() over (order by order_amount_base desc nulls last)
        end as spend_rank,
        case
            when ltv is not null
                then rank() over (order by ltv desc nulls last)
        end as ltv_rank

    from joined

),

segmented as (

    select
        account_id,
        case
            when spend_rank <= ceil({{ var('segments_top_spender_share') }} * account_count)
                or is_growing_buyer
                then 'high'
            when is_high_interest then 'medium'
            when tickets_30d >= {{ var('segments_heavy_support_tickets_30d') }} then 'low'
            else 'none'
        end as priority,
        case
            when ltv_rank <= ceil({{ var('segments_high_touch_share') }} * account_count) then 'high_touch'
            when ltv_rank <= ceil({{ var('segments_low_touch_share') }} * account_count) then 'low_touch'
            else 'tech_touch'
        end as touch_tier,
        round(cast(ltv as numeric), 2) as ltv,
        features_used_90d,
        features_used_90d = 1 as is_single_feature_user,
        events_30d >= {{ var('segments_heavy_user_min_events_30d') }} as is_heavy_user

    from ranked

)

select * from segmented
