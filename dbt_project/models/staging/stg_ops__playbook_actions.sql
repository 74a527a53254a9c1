with

source as (

    select * from {{ source('ops', 'playbook_actions') }}

),

renamed as (

    select

        cast(action_id as bigint) as action_id,
        cast(playbook as text) as playbook,
        cast(account_id as text) as account_id,
        cast(occasion_key as text) as occasion_key,
        cast(as_of_date as date) as fired_date,
        cast(fired_at as timestamptz) as fired_at,
        cast(channel as text) as channel,
        cast(status as text) as status,
        cast(outcome as text) as outcome,
        cast(outcome_at as timestamptz) as outcome_at

    from source

)

select * from renamed
