{#-
    The rules of the plays whose audiences read the daily signals: one
    definition each, used by the audience model (on as_of's row) and by
    play_backtests (on every day of the history). `rel` is the relation or
    alias holding the signal columns; `overrides` maps dbt var names to the
    values a backtest tries instead (`csflow backtest --set VAR=v1,v2`).
-#}

{% macro play_setting(name, overrides) -%}
    {{ return(overrides.get(name, var(name)) if overrides else var(name)) }}
{%- endmacro %}

{% macro usage_decline_rule(rel, overrides={}) -%}
    ({{ rel }}.events_prev_30d >= greatest({{ play_setting('usage_decline_min_previous_events', overrides) }}, 1)
        and {{ rel }}.events_30d <= {{ rel }}.events_prev_30d * (1 - {{ play_setting('usage_decline_min_drop', overrides) }}))
{%- endmacro %}

{% macro inquiry_surge_rule(rel, overrides={}) -%}
    ({{ rel }}.tickets_30d >= {{ play_setting('inquiry_surge_min_tickets_30d', overrides) }}
        and {{ rel }}.tickets_30d >= {{ play_setting('inquiry_surge_min_ratio', overrides) }} * {{ rel }}.tickets_prev_30d)
{%- endmacro %}

{% macro high_interest_rule(rel, overrides={}) -%}
    ({{ rel }}.pricing_page_visits + {{ rel }}.high_price_product_page_visits
            >= {{ play_setting('high_interest_min_page_visits', overrides) }}
        or {{ rel }}.cross_sell_clicks >= {{ play_setting('high_interest_min_cross_sell_clicks', overrides) }})
{%- endmacro %}

{#- play -> (its rule macro, the to_char format of its occasion: one firing per account per occasion) -#}
{% macro backtest_plays() -%}
    {{ return({
        'usage_decline': (usage_decline_rule, 'YYYY-MM'),
        'inquiry_surge': (inquiry_surge_rule, 'IYYY-"W"IW'),
        'high_interest': (high_interest_rule, 'IYYY-"W"IW'),
    }) }}
{%- endmacro %}

{#- Before a backtest: its play's rows for the settings it tries go, whatever months they covered. -#}
{% macro delete_backtest_settings() -%}
    {%- set backtest = var('backtest', none) -%}
    {%- if backtest and is_incremental() -%}
    delete from {{ this }}
    where playbook = '{{ backtest.play }}'
        and setting in ({% for label in backtest.settings %}'{{ label }}'{{ ', ' if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}
