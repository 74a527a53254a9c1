with

source as (

    select * from {{ source('ops', 'survey_responses') }}

),

renamed as (

    select

        -- in the landing file's shape: csflow's own answers are training feedback
        'csflow-' || cast(response_id as text) as response_id,
        cast(account_id as text) as account_id,
        cast(responded_at as timestamptz) as responded_at,
        'training_feedback' as survey_type,
        cast(score as integer) as score,
        cast(contact_id as text) as contact_id,
        cast(comment as text) as comment,
        cast(training_id as text) as training_id,
        cast(action_id as bigint) as action_id

    from source

)

select * from renamed
