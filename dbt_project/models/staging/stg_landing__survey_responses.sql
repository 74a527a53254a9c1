with

source as (

    select * from {{ source('landing', 'survey_responses') }}

),

renamed as (

    select

        -- contract columns
        response_id,
        account_id,
        cast(responded_at as timestamptz) as responded_at,
        survey_type,
        cast(score as integer) as score,
        contact_id,
        comment,
        training_id,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
