{#-
    The churn-risk model in use: the latest published run of ops.model_runs
    (`csflow model train`), with its card and the parameters churn_risk
    scores with. One row, or none before a model is published.
-#}

select *
from {{ ref('stg_ops__model_runs') }}
where status = 'published'
order by trained_at desc, model_version desc
limit 1
