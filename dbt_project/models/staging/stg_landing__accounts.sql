with

source as (

    select * from {{ source('landing', 'accounts') }}

),

renamed as (

    select

        -- contract columns
        account_id,
        account_name,
        owner_email,
        cast(created_date as date) as created_date,
        industry,
        plan,
        region,
        cast(fiscal_year_end_month as integer) as fiscal_year_end_month,
        owner_name,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line

    from source

)

select * from renamed
