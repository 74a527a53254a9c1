{#-
    One row per active account per as_of (history kept): the probability that
    it churns within the horizon the model was trained for, by the latest
    published churn-risk model (ops.model_runs, `csflow model train`), its
    three largest drivers with their signed contributions, and the model
    version. Scoring is plain SQL over the model's stored parameters:
    probability = 1 / (1 + exp(-(a * logit + b))), where logit = intercept +
    sum(weight * (feature - mean) / scale) and a, b are its calibration. A
    driver's contribution is its term of that sum (log-odds; positive raises
    the risk); driver_N_is_high: the account's value is above the model's
    average (an alert says "usage ... is low", not only "raises the risk").
    A feature the model was trained without (one added to the project since)
    has no term, which is the model as trained. No published model: no rows.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'as_of_date'],
        full_refresh=false,
        on_schema_change='append_new_columns',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = (select as_of_date from {{ ref('stg_ops__run_context') }}){% endif %}",
    )
}}

with

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

model as (

    select * from {{ ref('int_churn_model_latest') }}

),

features as (

    select features.*
    from {{ ref('int_churn_features') }} as features
    inner join run_context
        on features.signal_date = run_context.as_of_date

),

terms as (

    {% for name, _ in churn_features() -%}
    select
        features.account_id,
        '{{ name }}' as driver,
        cast(model.parameters -> 'features' -> '{{ name }}' ->> 'weight' as double precision)
            * (features.{{ name }} - cast(model.parameters -> 'features' -> '{{ name }}' ->> 'mean' as double precision))
            / cast(model.parameters -> 'features' -> '{{ name }}' ->> 'scale' as double precision) as contribution,
        features.{{ name }} > cast(model.parameters -> 'features' -> '{{ name }}' ->> 'mean' as double precision)
            as is_high
    from features
    cross join model
    where model.parameters -> 'features' -> '{{ name }}' is not null
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

ranked as (

    select
        *,
        row_number() over (partition by account_id order by abs(contribution) desc, driver) as driver_rank
    from terms

),

scored as (

    select
        ranked.account_id,
        run_context.as_of_date,
        1 / (1 + exp(-(
            cast(model.parameters -> 'calibration' ->> 'a' as double precision)
                * (cast(model.parameters ->> 'intercept' as double precision) + sum(ranked.contribution))
            + cast(model.parameters -> 'calibration' ->> 'b' as double precision)
        ))) as churn_probability,
        {% for rank in [1, 2, 3] -%}
        max(ranked.driver) filter (where ranked.driver_rank = {{ rank }}) as driver_{{ rank }},
        round(cast(max(ranked.contribution) filter (where ranked.driver_rank = {{ rank }}) as numeric), 3)
            as driver_{{ rank }}_contribution,
        bool_or(ranked.is_high) filter (where ranked.driver_rank = {{ rank }}) as driver_{{ rank }}_is_high,
        {% endfor -%}
        model.model_version,
        model.horizon_days

    from ranked
    cross join model
    cross join run_context
    group by ranked.account_id, run_context.as_of_date, model.parameters, model.model_version, model.horizon_days

)

select
    account_id,
    as_of_date,
    round(cast(churn_probability as numeric), 4) as churn_probability,
    driver_1,
    driver_1_contribution,
    driver_1_is_high,
    driver_2,
    driver_2_contribution,
    driver_2_is_high,
    driver_3,
    driver_3_contribution,
    driver_3_is_high,
    model_version,
    horizon_days

from scored
