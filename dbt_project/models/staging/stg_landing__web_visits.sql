with

source as (

    select * from {{ source('landing', 'web_visits') }}

),

renamed as (

    select

        -- contract columns
        account_id,
        cast(visited_at as timestamptz) as visited_at,
        page_url,
        contact_id,
        page_category,
        product_sku,
        cast(list_price as numeric) as list_price,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
