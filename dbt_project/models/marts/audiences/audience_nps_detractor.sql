{#-
    nps_detractor: new NPS responses scoring 0 .. nps_detractor_max_score
    from accounts that are not churned. New: responded (its day in the run's
    time zone) on as_of or the nps_detractor_new_days - 1 days before, so a
    missed nightly run is caught up; each response fires once (occasion key
    response_id). One row per response.
-#}
with

survey_responses as (

    select * from {{ ref('stg_landing__survey_responses') }}

),

contacts as (

    select * from {{ ref('stg_landing__contacts') }}

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

dated_responses as (

    select
        survey_responses.*,
        cast(survey_responses.responded_at at time zone run_context.timezone as date) as responded_date,
        run_context.as_of_date

    from survey_responses
    cross join run_context
    where survey_responses.survey_type = 'nps'

),

new_detractor_responses as (

    select * from dated_responses
    where score between 0 and {{ var('nps_detractor_max_score') }}
        and responded_date <= as_of_date
        and responded_date > as_of_date - {{ var('nps_detractor_new_days') }}

),

audience as (

    select
        'nps_detractor' as playbook,
        accounts.account_id,
        cast(null as text) as contact_id,
        new_detractor_responses.response_id as occasion_key,
        segments.priority,
        segments.touch_tier,
        accounts.owner_email,
        accounts.account_name,
        accounts.as_of_date,
        new_detractor_responses.response_id,
        new_detractor_responses.responded_at,
        new_detractor_responses.responded_date,
        new_detractor_responses.score as nps_score,
        nullif(trim(new_detractor_responses.comment), '') as comment,
        new_detractor_responses.contact_id as respondent_contact_id,
        contacts.email as respondent_email,
        contacts.contact_name as respondent_name

    from new_detractor_responses
    inner join accounts
        on new_detractor_responses.account_id = accounts.account_id
    inner join segments
        on new_detractor_responses.account_id = segments.account_id
    left join contacts
        on new_detractor_responses.contact_id = contacts.contact_id
    where not accounts.is_churned

)

select * from audience
