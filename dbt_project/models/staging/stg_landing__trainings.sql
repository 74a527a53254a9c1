with

source as (

    select * from {{ source('landing', 'trainings') }}

),

renamed as (

    select

        -- contract columns
        training_id,
        account_id,
        contact_id,
        cast(session_date as date) as session_date,
        cast(attended as boolean) as is_attended,
        topic,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
