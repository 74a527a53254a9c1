{#-
    The churn-risk model in use: the latest published run of ops.model_runs
    (`csflow model train`), with its card and the parameters churn_risk
    scores with. One row, or none before a model is published. A model that
    uses a feature the project no longer computes (churn_features) cannot be
    scored and is passed over; one trained before features were added can.
-#}

select *
from {{ ref('stg_ops__model_runs') }} as runs
where status = 'published'
    and not exists (
        select 1
        from jsonb_object_keys(runs.parameters -> 'features') as used (name)
        where used.name not in ({% for name, _ in churn_features() %}'{{ name }}'{{ ', ' if not loop.last }}{% endfor %})
    )
order by trained_at desc, model_version desc
limit 1
