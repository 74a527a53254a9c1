with

source as (

    select * from {{ source('landing', 'orders') }}

),

renamed as (

    select

        -- contract columns
        order_id,
        account_id,
        cast(ordered_at as timestamptz) as ordered_at,
        cast(amount as numeric) as amount,
        product_sku,
        product_name,
        order_type,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
