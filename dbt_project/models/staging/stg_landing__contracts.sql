with

source as (

    select * from {{ source('landing', 'contracts') }}

),

renamed as (

    select

        -- contract columns
        contract_id,
        account_id,
        plan,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        cast(arr as numeric) as arr,
        status,
        cast(auto_renew as boolean) as is_auto_renew,
        currency,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
