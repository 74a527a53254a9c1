{#-
    The var('fx_to_base') map as a relation (currency, rate_to_base), for the
    models that convert amounts to var('base_currency').
-#}
{% macro fx_rates() %}
    select * from (
        values
        {%- for code, rate in var('fx_to_base').items() %}
            ('{{ code }}', cast({{ rate }} as numeric)){{ "," if not loop.last }}
        {%- endfor %}
    ) as rates (currency, rate_to_base)
{% endmacro %}
