with

source as (

    select * from {{ source('landing', 'invoices') }}

),

renamed as (

    select

        -- contract columns
        invoice_id,
        account_id,
        cast(due_date as date) as due_date,
        cast(amount as numeric) as amount,
        cast(paid_date as date) as paid_date,

        -- load bookkeeping
        cast(_load_id as bigint) as load_id,
        cast(_line as bigint) as source_line,
        cast(_unknown_account as boolean) as is_unknown_account

    from source

)

select * from renamed
