{#-
    Fails unless the model has exactly one row. Models read the run's
    logical date with a scalar subquery on stg_ops__run_context, which must
    neither be empty nor ambiguous.
-#}
{% test exactly_one_row(model) %}

with

counted as (

    select count(*) as row_count
    from {{ model }}

)

select * from counted
where row_count <> 1

{% endtest %}
