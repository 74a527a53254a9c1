with

source as (

    select * from {{ source('landing', 'contacts') }}

),

renamed as (

    select

        -- contract columns
        contact_id,
        account_id,
        email,
        contact_name,
        role,
        cast(is_unsubscribed as boolean) as is_unsubscribed,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
