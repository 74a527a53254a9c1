{#-
    NPS per account as of as_of: the latest NPS response (by responded_at;
    ties by response_id) and the latest detractor response (score up to
    nps_detractor_max_score) that carries a comment. One row per account with
    an NPS response at or before as_of (its day in the run's time zone).
-#}
with

survey_responses as (

    select * from {{ ref('stg_landing__survey_responses') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

nps_responses as (

    select
        survey_responses.response_id,
        survey_responses.account_id,
        survey_responses.contact_id,
        survey_responses.responded_at,
        cast(survey_responses.responded_at at time zone run_context.timezone as date) as responded_date,
        survey_responses.score,
        nullif(trim(survey_responses.comment), '') as comment,
        run_context.as_of_date

    from survey_responses
    cross join run_context
    where survey_responses.survey_type = 'nps'

),

responses_up_to_as_of as (

    select
        *,
        row_number() over (
            partition by account_id order by responded_at desc, response_id desc
        ) as response_rank,
        row_number() over (
            partition by account_id, (score <= {{ var('nps_detractor_max_score') }} and comment is not null)
            order by responded_at desc, response_id desc
        ) as commented_detractor_rank

    from nps_responses
    where responded_date <= as_of_date

),

latest_responses as (

    select * from responses_up_to_as_of
    where response_rank = 1

),

latest_commented_detractors as (

    select * from responses_up_to_as_of
    where commented_detractor_rank = 1
        and score <= {{ var('nps_detractor_max_score') }}
        and comment is not null

),

joined as (

    select
        latest_responses.account_id,
        latest_responses.as_of_date,
        latest_responses.response_id as latest_response_id,
        latest_responses.responded_date as latest_responded_date,
        latest_responses.score as latest_score,
        latest_responses.comment as latest_comment,
        latest_commented_detractors.response_id as detractor_response_id,
        latest_commented_detractors.responded_date as detractor_responded_date,
        latest_commented_detractors.score as detractor_score,
        latest_commented_detractors.comment as detractor_comment

    from latest_responses
    left join latest_commented_detractors
        on latest_responses.account_id = latest_commented_detractors.account_id

)

select * from joined
