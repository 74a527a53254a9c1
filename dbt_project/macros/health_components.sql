{#-
    account_health's components and the vars that weigh them: one list for
    the mart and for the health score's backtest (which re-weighs stored
    component scores to try other weights).
-#}
{% macro health_components() -%}
    {{ return([
        ('usage_trend_score', 'health_weight_usage_trend'),
        ('adoption_breadth_score', 'health_weight_adoption_breadth'),
        ('nps_score', 'health_weight_nps'),
        ('support_load_score', 'health_weight_support_load'),
        ('payment_history_score', 'health_weight_payment_history'),
        ('marketing_engagement_score', 'health_weight_marketing_engagement'),
    ]) }}
{%- endmacro %}
