{#-
    single_feature_cross_sell: accounts (not churned) that used exactly one
    feature in the last 90 days. The suggested next feature is the one most
    often used (in those 90 days) by the accounts that use the same feature
    and others; with no such accounts, the feature most accounts use; ties
    by name. One row per account; the occasion is as_of's month (a monthly
    usage report).
-#}
with

usage_windows as (

    select * from {{ ref('int_usage_rolled_to_account_windows') }}

),

account_features as (

    select * from {{ ref('int_usage_rolled_to_account_features') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

single_feature_accounts as (

    select
        account_id,
        events_30d,
        events_90d,
        single_feature as used_feature

    from usage_windows
    where features_used_90d = 1

),

co_used_features as (

    -- for each feature, how many accounts use it together with each other feature
    select
        with_feature.feature as used_feature,
        other_feature.feature as suggested_feature,
        count(*) as account_count

    from account_features as with_feature
    inner join account_features as other_feature
        on with_feature.account_id = other_feature.account_id
        and with_feature.feature <> other_feature.feature
    group by with_feature.feature, other_feature.feature

),

popular_features as (

    select
        feature,
        count(*) as account_count

    from account_features
    group by feature

),

suggestion_candidates as (

    select
        used_feature,
        suggested_feature,
        account_count,
        true as is_co_used

    from co_used_features

    union all

    select
        cast(null as text) as used_feature,
        feature as suggested_feature,
        account_count,
        false as is_co_used

    from popular_features

),

ranked_suggestions as (

    select
        single_feature_accounts.account_id,
        suggestion_candidates.suggested_feature,
        row_number() over (
            partition by single_feature_accounts.account_id
            order by
                suggestion_candidates.is_co_used desc,
                suggestion_candidates.account_count desc,
                suggestion_candidates.suggested_feature
        ) as suggestion_rank

    from single_feature_accounts
    inner join suggestion_candidates
        on suggestion_candidates.suggested_feature <> single_feature_accounts.used_feature
        and (
            suggestion_candidates.used_feature = single_feature_accounts.used_feature
            or not suggestion_candidates.is_co_used
        )

),

audience as (

    select
        'single_feature_cross_sell' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        accounts.account_id || ':' || to_char(accounts.as_of_date, 'YYYY-MM') as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        single_feature_accounts.used_feature,
        ranked_suggestions.suggested_feature,
        single_feature_accounts.events_30d,
        single_feature_accounts.events_90d

    from single_feature_accounts
    inner join accounts
        on single_feature_accounts.account_id = accounts.account_id
    inner join segments
        on single_feature_accounts.account_id = segments.account_id
    left join ranked_suggestions
        on single_feature_accounts.account_id = ranked_suggestions.account_id
        and ranked_suggestions.suggestion_rank = 1
    where not accounts.is_churned

)

select * from audience
