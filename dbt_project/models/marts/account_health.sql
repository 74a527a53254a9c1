{#-
    One row per account per as_of; history is kept. Each run replaces the
    rows of its own as_of only (pre-hook, then delete+insert), so a backfill
    over past dates fills the history, and the history-based columns read
    the scores stored for earlier dates. full_refresh is off: --full-refresh
    must not wipe a history that cannot be rebuilt from today's data alone.
    health_score: weighted mean of the component scores present (weights are
    the health_weight_* vars; missing components drop out and the others'
    weights are rescaled); null when no component has data.
-#}
{%- set components = health_components() -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'as_of_date'],
        full_refresh=false,
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['account_id', 'as_of_date'], 'unique': true},
            {'columns': ['as_of_date']},
        ],
        pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = (select as_of_date from {{ ref('stg_ops__run_context') }}){% endif %}",
    )
}}

with

components as (

    select * from {{ ref('int_health_components_scored') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

stored_scores as (

    -- scores stored by earlier runs, for the 30-day change and the weekly trend
    {% if is_incremental() %}
    select
        stored.account_id,
        stored.as_of_date,
        stored.health_score

    from {{ this }} as stored
    cross join run_context
    where stored.as_of_date in (
        run_context.as_of_date - 30,
        run_context.as_of_date - 21,
        run_context.as_of_date - 14,
        run_context.as_of_date - 7
    )
    {% else %}
    select
        cast(null as text) as account_id,
        cast(null as date) as as_of_date,
        cast(null as numeric) as health_score

    where false
    {% endif %}

),

weighted as (

    select
        components.account_id,
        run_context.as_of_date,
        {% for column, _ in components -%}
        components.{{ column }},
        {% endfor -%}
        (
            {% for column, weight in components -%}
            coalesce(components.{{ column }} * {{ var(weight) }}, 0){{ ' +' if not loop.last }}
            {% endfor -%}
        ) as weighted_sum,
        (
            {% for column, weight in components -%}
            case when components.{{ column }} is not null then {{ var(weight) }} else 0 end{{ ' +' if not loop.last }}
            {% endfor -%}
        ) as weight_sum

    from components
    cross join run_context

),

scored as (

    select
        *,
        round(cast(weighted_sum / nullif(weight_sum, 0) as numeric), 2) as health_score

    from weighted

),

banded as (

    select
        *,
        case
            when health_score >= {{ var('health_green_min_score') }} then 'green'
            when health_score >= {{ var('health_yellow_min_score') }} then 'yellow'
            when health_score is not null then 'red'
        end as health_band

    from scored

),

compared as (

    select
        banded.account_id,
        banded.as_of_date,
        banded.health_score,
        banded.health_band,
        {% for column, _ in components -%}
        banded.{{ column }},
        {% endfor -%}
        banded.health_score - score_30d_ago.health_score as score_change_30d,
        coalesce(
            score_21d_ago.health_score > score_14d_ago.health_score
            and score_14d_ago.health_score > score_7d_ago.health_score
            and score_7d_ago.health_score > banded.health_score,
            false
        ) as is_declining

    from banded
    left join stored_scores as score_30d_ago
        on banded.account_id = score_30d_ago.account_id
        and score_30d_ago.as_of_date = banded.as_of_date - 30
    left join stored_scores as score_21d_ago
        on banded.account_id = score_21d_ago.account_id
        and score_21d_ago.as_of_date = banded.as_of_date - 21
    left join stored_scores as score_14d_ago
        on banded.account_id = score_14d_ago.account_id
        and score_14d_ago.as_of_date = banded.as_of_date - 14
    left join stored_scores as score_7d_ago
        on banded.account_id = score_7d_ago.account_id
        and score_7d_ago.as_of_date = banded.as_of_date - 7

)

select * from compared
