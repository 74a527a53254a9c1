{#-
    churn_risk_high: accounts (not churned) whose churn probability on as_of,
    by the latest published churn-risk model (churn_risk), is at least
    churn_risk_high_min_probability. The play ships off (playbooks.yml:
    enabled: false) until a model has been validated on your history. One
    row per account; the occasion is as_of's month.
-#}

with

risk as (

    select * from {{ ref('churn_risk') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

audience as (

    select
        'churn_risk_high' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        accounts.account_id || ':' || to_char(accounts.as_of_date, 'YYYY-MM') as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        round(100 * risk.churn_probability, 1) as churn_probability_pct,
        risk.horizon_days,
        risk.driver_1,
        risk.driver_1_contribution,
        risk.driver_1_is_high,
        risk.driver_2,
        risk.driver_2_contribution,
        risk.driver_2_is_high,
        risk.driver_3,
        risk.driver_3_contribution,
        risk.driver_3_is_high,
        risk.model_version

    from risk
    inner join accounts
        on risk.account_id = accounts.account_id
        and risk.as_of_date = accounts.as_of_date
    inner join segments
        on risk.account_id = segments.account_id
    where not accounts.is_churned
        and risk.churn_probability >= {{ var('churn_risk_high_min_probability') }}

)

select * from audience
