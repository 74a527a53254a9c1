{#-
    What goes with churn: one row per signal (each feature of the churn-risk
    model), from the latest published model run's card: the churn rate in
    each quintile of the signal over the labelled observations (bucket 1 the
    lowest values; fewer buckets where values repeat), the bounds of each
    bucket, and the signal's own AUC (above 0.5: higher values go with
    churn; below: lower values do). Association, not cause: whether acting
    on a signal keeps customers is for a control group to show.
-#}

with

model as (

    select * from {{ ref('int_churn_model_latest') }}

),

signals as (

    select
        model.model_version,
        model.horizon_days,
        signal.value as signal

    from model
    cross join jsonb_array_elements(model.card -> 'signals') as signal

),

flattened as (

    select
        signal ->> 'signal' as signal,
        round(cast(signal ->> 'auc' as numeric), 4) as signal_auc,
        {% for bucket in range(5) -%}
        cast(signal -> 'buckets' -> {{ bucket }} ->> 'churn_rate' as numeric) as churn_rate_bucket_{{ bucket + 1 }},
        {% endfor -%}
        (
            select sum(cast(b ->> 'observations' as integer))
            from jsonb_array_elements(signal -> 'buckets') as b
        ) as observations,
        signal -> 'buckets' as buckets,
        horizon_days,
        model_version

    from signals

)

select * from flattened
