{#-
    post_training_survey: contacts who attended a training session held
    post_training_survey_min_days .. post_training_survey_max_days days
    before as_of (1-7 by default) and have not yet answered its
    training_feedback survey. One row per training and contact.
-#}
with

trainings as (

    select * from {{ ref('stg_landing__trainings') }}

),

contacts as (

    select * from {{ ref('stg_landing__contacts') }}

),

survey_responses as (

    select * from {{ ref('int_survey_responses_unioned') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

segments as (

    select * from {{ ref('account_segments') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

recent_attendances as (

    select
        trainings.*,
        accounts.as_of_date

    from trainings
    inner join accounts
        on trainings.account_id = accounts.account_id
    where trainings.is_attended
        and trainings.session_date
            between accounts.as_of_date - {{ var('post_training_survey_max_days') }}
            and accounts.as_of_date - {{ var('post_training_survey_min_days') }}

),

answered_surveys as (

    select distinct
        survey_responses.training_id,
        survey_responses.contact_id

    from survey_responses
    cross join run_context
    where survey_responses.survey_type = 'training_feedback'
        and survey_responses.training_id is not null
        and survey_responses.contact_id is not null
        and cast(survey_responses.responded_at at time zone run_context.timezone as date)
            <= run_context.as_of_date

),

unanswered_attendances as (

    select recent_attendances.*

    from recent_attendances
    left join answered_surveys
        on recent_attendances.training_id = answered_surveys.training_id
        and recent_attendances.contact_id = answered_surveys.contact_id
    where answered_surveys.training_id is null

),

audience as (

    select
        'post_training_survey' as playbook,
        unanswered_attendances.account_id,
        unanswered_attendances.contact_id,
        unanswered_attendances.training_id || ':' || unanswered_attendances.contact_id as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        unanswered_attendances.as_of_date,
        unanswered_attendances.training_id,
        unanswered_attendances.session_date,
        unanswered_attendances.as_of_date - unanswered_attendances.session_date as days_since_training,
        unanswered_attendances.topic,
        contacts.email as contact_email,
        contacts.contact_name,
        coalesce(contacts.is_unsubscribed, false) as is_unsubscribed

    from unanswered_attendances
    inner join accounts
        on unanswered_attendances.account_id = accounts.account_id
    inner join segments
        on unanswered_attendances.account_id = segments.account_id
    left join contacts
        on unanswered_attendances.contact_id = contacts.contact_id

)

select * from audience
