{#-
    Fails for each non-null value outside [min_value, max_value] (inclusive;
    either bound may be omitted). Mirrors Column.min_value/max_value in
    csflow/contract.py.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}

with

out_of_range as (

    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
        and (
            false
            {%- if min_value is not none %}
            or {{ column_name }} < {{ min_value }}
            {%- endif %}
            {%- if max_value is not none %}
            or {{ column_name }} > {{ max_value }}
            {%- endif %}
        )

)

select * from out_of_range

{% endtest %}
