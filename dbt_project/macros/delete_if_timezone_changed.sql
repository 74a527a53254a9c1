{#-
    Pre-hook for incremental day rollups: a run in another time zone than the
    rows were rolled up in empties the table, so every day is recomputed.
    All rows share one zone, so one row tells (no scan of the table when the
    zone is unchanged). Use as pre_hook="{{ delete_if_timezone_changed() }}".
-#}
{% macro delete_if_timezone_changed() %}
{% if is_incremental() %}
delete from {{ this }}
where (select timezone from {{ this }} limit 1)
    is distinct from (select timezone from {{ ref('stg_ops__run_context') }})
{% endif %}
{% endmacro %}
