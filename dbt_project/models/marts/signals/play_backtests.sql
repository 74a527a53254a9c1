{#-
    What a play's rule would have done over the signal history, for each
    setting tried: `csflow backtest` passes the var `backtest` ({play,
    settings: {label: {var: value}}, from, to, horizon}) and reads the rows
    back. Without it the model adds nothing; rows of earlier backtests stay,
    and a backtest of the same play and setting replaces its own.

    One row per play, setting and month:
    - firings: occasions the rule would have fired on (the first day of each
      occasion it holds; accounts are left out after they churned), by the
      month of that day; judged: those whose horizon has passed by as_of;
      of those, how many accounts churned, renewed or expanded (a renewal
      with more ARR) within the horizon after the firing; precision =
      churned / judged.
    - churners: contracts that ended in churn that month; reached: those the
      rule fired on in the horizon before the end; recall = reached /
      churners; lead_days: for each reached churner, days from the first
      such firing to the end (median_lead_days, their median).
    The health score gets the same treatment as play health_score (macro
    health_score_backtest): per month, its AUC against churn within the
    horizon, and the churners' band a horizon before their end.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['playbook', 'setting', 'month'],
        full_refresh=false,
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_backtest_settings() }}",
    )
}}

{%- set backtest = var('backtest', none) %}

{%- if backtest and backtest.play == 'health_score' %}

{{ health_score_backtest(backtest) }}

{%- elif backtest %}
{%- set plays = backtest_plays() %}
{%- if backtest.play not in plays %}
    {{ exceptions.raise_compiler_error("backtest: play " ~ backtest.play ~ " has no rule over the daily signals; backtests cover " ~ (plays.keys() | sort | join(', '))) }}
{%- endif %}
{%- set rule, occasion_format = plays[backtest.play] %}
{%- set horizon = backtest.horizon | int %}

with

signals as (

    select * from {{ ref('account_signals_daily') }}
    where signal_date between cast('{{ backtest.from }}' as date) and cast('{{ backtest.to }}' as date)

),

ends as (

    select * from {{ ref('int_contract_ends_labelled') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

churned_on as (

    select account_id, max(end_date) as churned_on
    from ends
    where outcome = 'churned'
    group by account_id

),

live_signals as (

    select signals.*
    from signals
    left join churned_on
        on signals.account_id = churned_on.account_id
    where churned_on.churned_on is null or signals.signal_date <= churned_on.churned_on

),

fired as (

    {%- for label, overrides in backtest.settings.items() %}
    select
        '{{ label }}' as setting,
        account_id,
        min(signal_date) as fired_on

    from live_signals
    where {{ rule('live_signals', overrides) }}
    group by account_id, to_char(signal_date, '{{ occasion_format }}')
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

judged as (

    select
        fired.setting,
        fired.account_id,
        fired.fired_on,
        fired.fired_on + {{ horizon }} <= (select as_of_date from run_context) as is_judged,
        bool_or(ends.outcome = 'churned') as churned,
        bool_or(ends.outcome = 'renewed') as renewed,
        bool_or(ends.is_expanded) as expanded

    from fired
    left join ends
        on fired.account_id = ends.account_id
        and ends.end_date > fired.fired_on
        and ends.end_date <= fired.fired_on + {{ horizon }}
    group by 1, 2, 3

),

firings_by_month as (

    select
        setting,
        cast(date_trunc('month', fired_on) as date) as month,
        count(*) as firings,
        count(*) filter (where is_judged) as judged,
        count(*) filter (where is_judged and churned) as churned,
        count(*) filter (where is_judged and renewed) as renewed,
        count(*) filter (where is_judged and expanded) as expanded

    from judged
    group by 1, 2

),

settings as (

    select distinct setting from fired
    {%- for label in backtest.settings %}
    union select '{{ label }}'
    {%- endfor %}

),

churns as (

    -- each churn in the range, for each setting, with the first firing in the horizon before it
    select
        settings.setting,
        ends.account_id,
        ends.end_date,
        min(fired.fired_on) as first_warned_on

    from ends
    cross join settings
    left join fired
        on fired.setting = settings.setting
        and fired.account_id = ends.account_id
        and fired.fired_on >= ends.end_date - {{ horizon }}
        and fired.fired_on < ends.end_date
    where ends.outcome = 'churned'
        and ends.end_date between cast('{{ backtest.from }}' as date) and cast('{{ backtest.to }}' as date)
    group by 1, 2, 3

),

churns_by_month as (

    select
        setting,
        cast(date_trunc('month', end_date) as date) as month,
        count(*) as churners,
        count(first_warned_on) as reached,
        percentile_cont(0.5) within group (order by end_date - first_warned_on) as median_lead_days,
        array_agg(end_date - first_warned_on order by end_date - first_warned_on)
            filter (where first_warned_on is not null) as lead_days

    from churns
    group by 1, 2

),

months as (

    select setting, month from firings_by_month
    union
    select setting, month from churns_by_month

),

backtests as (

    select
        '{{ backtest.play }}' as playbook,
        months.setting,
        months.month,
        {{ horizon }} as horizon_days,
        coalesce(firings_by_month.firings, 0) as firings,
        coalesce(firings_by_month.judged, 0) as firings_judged,
        coalesce(firings_by_month.churned, 0) as churned,
        coalesce(firings_by_month.renewed, 0) as renewed,
        coalesce(firings_by_month.expanded, 0) as expanded,
        round(firings_by_month.churned / cast(nullif(firings_by_month.judged, 0) as numeric), 4) as precision,
        coalesce(churns_by_month.churners, 0) as churners,
        coalesce(churns_by_month.reached, 0) as churners_reached,
        round(churns_by_month.reached / cast(nullif(churns_by_month.churners, 0) as numeric), 4) as recall,
        churns_by_month.median_lead_days,
        churns_by_month.lead_days,
        cast(null as numeric) as auc,
        cast(null as bigint) as churners_red,
        cast(null as bigint) as churners_yellow,
        (select as_of_date from run_context) as as_of_date,
        current_timestamp as backtested_at

    from months
    left join firings_by_month
        on months.setting = firings_by_month.setting and months.month = firings_by_month.month
    left join churns_by_month
        on months.setting = churns_by_month.setting and months.month = churns_by_month.month

)

select * from backtests

{%- else %}

select
    cast(null as text) as playbook,
    cast(null as text) as setting,
    cast(null as date) as month,
    cast(null as integer) as horizon_days,
    cast(null as bigint) as firings,
    cast(null as bigint) as firings_judged,
    cast(null as bigint) as churned,
    cast(null as bigint) as renewed,
    cast(null as bigint) as expanded,
    cast(null as numeric) as precision,
    cast(null as bigint) as churners,
    cast(null as bigint) as churners_reached,
    cast(null as numeric) as recall,
    cast(null as double precision) as median_lead_days,
    cast(null as integer[]) as lead_days,
    cast(null as numeric) as auc,
    cast(null as bigint) as churners_red,
    cast(null as bigint) as churners_yellow,
    cast(null as date) as as_of_date,
    cast(null as timestamptz) as backtested_at
where false

{%- endif %}
