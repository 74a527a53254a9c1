with

source as (

    select * from {{ source('ops', 'run_context') }}

),

renamed as (

    select

        cast(as_of_date as date) as as_of_date,
        cast(timezone as text) as timezone,
        cast(run_id as text) as run_id

    from source

)

select * from renamed
