{#-
    The usage event types counted on their own (var signal_event_types), as
    (event_type, column) pairs: the column is `events_` and the type with
    anything but letters and digits turned into `_` (login -> events_login).
    The daily usage rollup counts each listed type in its column, the signal
    history sums them over 30 days (events_login_30d), and the churn model
    takes each as a feature. A type added to the var is counted from the days
    rolled up after; older days count it as 0.
-#}
{% macro event_type_columns() -%}
    {%- set columns = [] -%}
    {%- for event_type in var('signal_event_types') -%}
        {%- do columns.append((event_type, 'events_' ~ modules.re.sub('[^a-z0-9]+', '_', event_type | lower))) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
