with

source as (

    select * from {{ source('landing', 'usage_events') }}

),

renamed as (

    select

        -- contract columns
        account_id,
        cast(occurred_at as timestamptz) as occurred_at,
        event_type,
        event_id,
        user_id,
        feature,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
