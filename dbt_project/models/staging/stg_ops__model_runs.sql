with

source as (

    select * from {{ source('ops', 'model_runs') }}

),

renamed as (

    select

        cast(model_version as text) as model_version,
        trained_at,
        cast(as_of_date as date) as as_of_date,
        cast(status as text) as status,
        cast(horizon_days as integer) as horizon_days,
        card,
        parameters

    from source

)

select * from renamed
