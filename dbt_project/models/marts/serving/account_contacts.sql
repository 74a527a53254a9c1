{#-
    One row per contact of an account: the people customer email goes to,
    and whether the CRM marks them unsubscribed (csflow keeps opt-outs per
    address in ops.suppressions; this flag is one of their sources).
-#}

{{ config(indexes=[{'columns': ['account_id']}]) }}

with

contacts as (

    select * from {{ ref('stg_landing__contacts') }}

),

directory as (

    select
        contact_id,
        account_id,
        email,
        contact_name,
        role,
        coalesce(is_unsubscribed, false) as is_unsubscribed

    from contacts

)

select * from directory
