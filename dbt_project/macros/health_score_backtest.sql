{#-
    play_backtests for the health score (`csflow backtest --play health_score`):
    on the days account_health holds in the range (a nightly run's, or
    `csflow signals backfill --with-health`), for accounts with a contract
    running, one row per month:
    - firings / firings_judged: observations (account and day) whose horizon
      has passed; churned: those whose account churned within it;
    - auc: how often a churner's score is below a stayer's among that
      month's judged observations (Mann-Whitney, ties counted half; 0.5 is a
      coin, above it the score ranks churners as less healthy);
    - churners: contracts that ended in churn that month; churners_red,
      churners_yellow: their band on the latest observed day at least a
      horizon before the end; churners_reached: red or yellow (recall).
-#}
{% macro health_score_backtest(backtest) -%}
{%- set horizon = backtest.horizon | int %}
with

health as (

    select
        health.account_id,
        health.as_of_date as observed_on,
        health.health_score,
        health.health_band

    from {{ ref('account_health') }} as health
    inner join {{ ref('account_signals_daily') }} as signals
        on health.account_id = signals.account_id
        and health.as_of_date = signals.signal_date
    where health.as_of_date between cast('{{ backtest.from }}' as date) and cast('{{ backtest.to }}' as date)
        and health.health_score is not null
        and signals.days_to_renewal is not null

),

ends as (

    select * from {{ ref('int_contract_ends_labelled') }}
    where outcome = 'churned'

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

judged as (

    select
        health.*,
        cast(date_trunc('month', health.observed_on) as date) as month,
        exists (
            select 1 from ends
            where ends.account_id = health.account_id
                and ends.end_date > health.observed_on
                and ends.end_date <= health.observed_on + {{ horizon }}
        ) as churned

    from health
    where health.observed_on + {{ horizon }} <= (select as_of_date from run_context)

),

ranked as (

    -- rank 1 the healthiest; tied scores share their average rank
    select
        *,
        rank() over (partition by month order by health_score desc)
            + (count(*) over (partition by month, health_score) - 1) / 2.0 as risk_rank

    from judged

),

observed_by_month as (

    select
        month,
        count(*) as observations,
        count(*) filter (where churned) as churned,
        sum(risk_rank) filter (where churned) as churner_rank_sum

    from ranked
    group by month

),

churner_bands as (

    -- each churn in the range, with its band on the latest observed day a horizon or more before the end
    select
        ends.account_id,
        ends.end_date,
        (
            select health.health_band
            from health
            where health.account_id = ends.account_id
                and health.observed_on <= ends.end_date - {{ horizon }}
            order by health.observed_on desc
            limit 1
        ) as band_ahead

    from ends
    where ends.end_date between cast('{{ backtest.from }}' as date) + {{ horizon }}
        and cast('{{ backtest.to }}' as date) + {{ horizon }}

),

churners_by_month as (

    select
        cast(date_trunc('month', end_date) as date) as month,
        count(*) as churners,
        count(*) filter (where band_ahead = 'red') as churners_red,
        count(*) filter (where band_ahead = 'yellow') as churners_yellow

    from churner_bands
    group by 1

),

months as (

    select month from observed_by_month
    union
    select month from churners_by_month

)

select
    'health_score' as playbook,
    'configured' as setting,
    months.month,
    {{ horizon }} as horizon_days,
    coalesce(observed_by_month.observations, 0) as firings,
    coalesce(observed_by_month.observations, 0) as firings_judged,
    coalesce(observed_by_month.churned, 0) as churned,
    0 as renewed,
    0 as expanded,
    cast(null as numeric) as precision,
    coalesce(churners_by_month.churners, 0) as churners,
    coalesce(churners_by_month.churners_red + churners_by_month.churners_yellow, 0) as churners_reached,
    round(
        (churners_by_month.churners_red + churners_by_month.churners_yellow)
            / cast(nullif(churners_by_month.churners, 0) as numeric),
        4
    ) as recall,
    cast(null as double precision) as median_lead_days,
    cast(null as integer[]) as lead_days,
    round(cast(
        (observed_by_month.churner_rank_sum - observed_by_month.churned * (observed_by_month.churned + 1) / 2.0)
            / nullif(observed_by_month.churned * (observed_by_month.observations - observed_by_month.churned), 0)
        as numeric), 4) as auc,
    coalesce(churners_by_month.churners_red, 0) as churners_red,
    coalesce(churners_by_month.churners_yellow, 0) as churners_yellow,
    (select as_of_date from run_context) as as_of_date,
    current_timestamp as backtested_at

from months
left join observed_by_month
    on months.month = observed_by_month.month
left join churners_by_month
    on months.month = churners_by_month.month
{%- endmacro %}
