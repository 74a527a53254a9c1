{#-
    The churn-risk model's features (the churn_features macro) for every
    account and day of the signal history on which the account has a
    contract running: what the model trains on (`csflow model train`) and
    what churn_risk scores. One row per account and day.
-#}

with

signals as (

    select * from {{ ref('account_signals_daily') }}

),

features as (

    select
        account_id,
        signal_date,
        {% for name, expression in churn_features() -%}
        cast({{ expression }} as double precision) as {{ name }}{{ ',' if not loop.last }}
        {% endfor %}
    from signals
    where days_to_renewal is not null

)

select * from features
