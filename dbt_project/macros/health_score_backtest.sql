{#-
    play_backtests for the health score (`csflow backtest --play health_score`):
    on the days account_health holds in the range (a nightly run's, or
    `csflow signals backfill --with-health`), for accounts with a contract
    running. Each setting re-weighs the stored component scores (weights and
    band thresholds may be tried with --set; the configured ones otherwise),
    exactly as account_health combines them. One row per setting and month:
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
{%- set components = health_components() %}
with

components as (

    select
        health.account_id,
        health.as_of_date as observed_on,
        {% for column, _ in components -%}
        health.{{ column }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ ref('account_health') }} as health
    inner join {{ ref('account_signals_daily') }} as signals
        on health.account_id = signals.account_id
        and health.as_of_date = signals.signal_date
    where health.as_of_date between cast('{{ backtest.from }}' as date) and cast('{{ backtest.to }}' as date)
        and signals.days_to_renewal is not null

),

scored as (

    {%- for label, overrides in backtest.settings.items() %}
    select
        '{{ label }}' as setting,
        account_id,
        observed_on,
        (
            {% for column, weight in components -%}
            coalesce({{ column }} * {{ play_setting(weight, overrides) }}, 0){{ ' +' if not loop.last }}
            {% endfor -%}
        ) / nullif(
            {% for column, weight in components -%}
            case when {{ column }} is not null then {{ play_setting(weight, overrides) }} else 0 end{{ ' +' if not loop.last }}
            {% endfor -%}
        , 0) as health_score,
        {{ play_setting('health_green_min_score', overrides) }} as green_min,
        {{ play_setting('health_yellow_min_score', overrides) }} as yellow_min

    from components
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

health as (

    select
        setting,
        account_id,
        observed_on,
        health_score,
        case
            when health_score >= green_min then 'green'
            when health_score >= yellow_min then 'yellow'
            else 'red'
        end as health_band

    from scored
    where health_score is not null

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
        rank() over (partition by setting, month order by health_score desc)
            + (count(*) over (partition by setting, month, health_score) - 1) / 2.0 as risk_rank

    from judged

),

observed_by_month as (

    select
        setting,
        month,
        count(*) as observations,
        count(*) filter (where churned) as churned,
        sum(risk_rank) filter (where churned) as churner_rank_sum

    from ranked
    group by setting, month

),

churner_bands as (

    -- each churn in the range, for each setting, with its band on the latest observed day
    -- a horizon or more before the end
    select
        settings.setting,
        ends.account_id,
        ends.end_date,
        (
            select health.health_band
            from health
            where health.setting = settings.setting
                and health.account_id = ends.account_id
                and health.observed_on <= ends.end_date - {{ horizon }}
            order by health.observed_on desc
            limit 1
        ) as band_ahead

    from ends
    cross join (select distinct setting from scored) as settings
    where ends.end_date between cast('{{ backtest.from }}' as date) + {{ horizon }}
        and cast('{{ backtest.to }}' as date) + {{ horizon }}

),

churners_by_month as (

    select
        setting,
        cast(date_trunc('month', end_date) as date) as month,
        count(*) as churners,
        count(*) filter (where band_ahead = 'red') as churners_red,
        count(*) filter (where band_ahead = 'yellow') as churners_yellow

    from churner_bands
    group by 1, 2

),

months as (

    select setting, month from observed_by_month
    union
    select setting, month from churners_by_month

)

select
    'health_score' as playbook,
    months.setting,
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
    on months.setting = observed_by_month.setting and months.month = observed_by_month.month
left join churners_by_month
    on months.setting = churners_by_month.setting and months.month = churners_by_month.month
{%- endmacro %}
