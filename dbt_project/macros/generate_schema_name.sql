{#-
    Use a model's custom schema verbatim (`staging`, not `public_staging`),
    falling back to the target schema when a model sets none.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
