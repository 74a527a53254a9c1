{#-
    For the small per-day rollups (web visits, email events): the CTEs that
    find the (account, day) pairs rows of new loads fall on, and the filter
    that keeps only the rows of those days. New loads are those with a
    load_id above the largest one already rolled up; on a full build every
    day is in scope. (int_usage_rolled_to_account_days does more to avoid a
    second pass over raw; its volume is a hundred times these.)

    Use, inside a model's `with`:
        {{ days_touched_by_new_loads('web_visits', 'visited_at', 'visit_date') }}
    and in the CTE that reads the dated rows:
        {{ only_touched_days('visit_date') }}
-#}
{% macro days_touched_by_new_loads(rows, timestamp_column, day_column) %}
{% if is_incremental() %}

rolled_up_loads as (

    select coalesce(max(max_load_id), 0) as max_load_id
    from {{ this }}

),

touched_days as (

    select distinct
        {{ rows }}.account_id,
        cast({{ rows }}.{{ timestamp_column }} at time zone run_context.timezone as date) as {{ day_column }}

    from {{ rows }}
    cross join run_context
    where {{ rows }}.load_id > (select max_load_id from rolled_up_loads)

),

{% endif %}
{% endmacro %}


{% macro only_touched_days(day_column) %}
{% if is_incremental() %}
where (account_id, {{ day_column }}) in (select account_id, {{ day_column }} from touched_days)
{% endif %}
{% endmacro %}
