{#-
    One row per survey response with a comment, at or before as_of, with the
    day it was given in the run's time zone (the CSM digest shows the recent
    ones).
-#}
with

responses as (

    select * from {{ ref('int_survey_responses_unioned') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

commented as (

    select
        responses.response_id,
        responses.account_id,
        responses.survey_type,
        responses.score,
        responses.comment,
        cast(responses.responded_at at time zone run_context.timezone as date) as responded_date

    from responses
    cross join run_context
    where responses.comment is not null

),

up_to_as_of as (

    select commented.*
    from commented
    where commented.responded_date <= (select as_of_date from run_context)

)

select * from up_to_as_of
