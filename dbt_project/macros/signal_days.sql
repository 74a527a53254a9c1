{#-
    The days account_signals_daily builds: the run's as_of, or the range
    `csflow signals backfill` passes as the vars signals_from and signals_to.
    One select of first_day and last_day, for the model and its pre-hook.
-#}
{% macro signal_days() -%}
    select
        {% if var('signals_from', none) %}cast('{{ var("signals_from") }}' as date){% else %}as_of_date{% endif %} as first_day,
        {% if var('signals_to', none) %}cast('{{ var("signals_to") }}' as date){% else %}as_of_date{% endif %} as last_day,
        timezone
    from {{ ref('stg_ops__run_context') }}
{%- endmacro %}
