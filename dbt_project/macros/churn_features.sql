{#-
    The churn-risk model's features: (name, SQL over account_signals_daily).
    One list for the features model the training reads and for the scoring
    in churn_risk. Counts enter as log(1 + n): levels, not only trends, since
    how much an account uses the product says more than its last month's
    change. Each usage event type of the var signal_event_types is a feature
    of its own (log_events_login_30d, ...): which kind of use an account
    keeps up can say more than the total. A missing NPS is its own feature
    (has_nps), not a made-up score.
-#}
{% macro churn_features() -%}
    {%- set features = [
        ('log_events_30d', 'ln(1 + events_30d)'),
        ('log_events_prev_30d', 'ln(1 + events_prev_30d)'),
        ('usage_change', 'greatest(-1, least(coalesce(usage_change, 0), 2))'),
        ('log_active_users_30d', 'ln(1 + active_users_30d)'),
        ('log_active_users_prev_30d', 'ln(1 + active_users_prev_30d)'),
        ('features_used_90d', 'features_used_90d'),
        ('log_tickets_30d', 'ln(1 + tickets_30d)'),
        ('log_tickets_prev_30d', 'ln(1 + tickets_prev_30d)'),
        ('has_nps', 'case when nps_score_latest is null then 0 else 1 end'),
        ('nps_score', 'coalesce(nps_score_latest - 7, 0)'),
        ('overdue_invoices', 'least(overdue_invoices, 5)'),
        ('log_interest_14d', 'ln(1 + pricing_page_visits + high_price_product_page_visits + cross_sell_clicks)'),
        ('renewal_within_90d', 'case when days_to_renewal <= 90 then 1 else 0 end'),
        ('log_arr_base', 'ln(1 + coalesce(arr_base, 0))'),
        ('log_account_age', 'ln(1 + account_age_days)'),
    ] -%}
    {%- for _, column in event_type_columns() -%}
        {%- do features.append(('log_' ~ column ~ '_30d', 'ln(1 + coalesce(' ~ column ~ '_30d, 0))')) -%}
    {%- endfor -%}
    {{ return(features) }}
{%- endmacro %}
