with

source as (

    select * from {{ source('landing', 'support_tickets') }}

),

renamed as (

    select

        -- contract columns
        ticket_id,
        account_id,
        cast(opened_at as timestamptz) as opened_at,
        channel,
        category,
        status,
        cast(resolved_at as timestamptz) as resolved_at,
        contact_id,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
