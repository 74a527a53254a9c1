{#-
    Every survey response csflow knows: the survey_responses landing file's
    and the answers given on csflow's own survey page (ops.survey_responses),
    in one shape. A contact who answered both ways is counted once per
    training by the models that ask "answered?"; scores of both are kept.
-#}
{%- set columns = [
    'response_id', 'account_id', 'responded_at', 'survey_type', 'score', 'contact_id', 'comment', 'training_id'
] %}

with

landing_responses as (

    select * from {{ ref('stg_landing__survey_responses') }}

),

page_responses as (

    select * from {{ ref('stg_ops__survey_responses') }}

),

unioned as (

    select {{ columns | join(', ') }}, 'landing' as answered_in
    from landing_responses

    union all

    select {{ columns | join(', ') }}, 'survey_page' as answered_in
    from page_responses

)

select * from unioned
