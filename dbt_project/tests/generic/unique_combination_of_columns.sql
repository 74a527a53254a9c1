{#-
    Fails for each combination of the given columns that occurs more than
    once. Nulls count as equal (group by semantics), matching how ingest keys
    rows that have no id. Same name and argument as dbt_utils' test, which we
    cannot install (no dbt packages).
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {% for column in combination_of_columns -%}
        {{ column }},
        {% endfor -%}
        count(*) as row_count

    from {{ model }}

    group by {{ combination_of_columns | join(', ') }}

),

duplicated as (

    select * from grouped
    where row_count > 1

)

select * from duplicated

{% endtest %}
