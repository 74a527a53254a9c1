{#-
    One row per account: who it is, who owns it, where it is. What csflow's
    Python reads about accounts (the playbook engine's locales, the digests'
    names and owners, the demo's tour), so it reads no staging model.
-#}
with

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

directory as (

    select
        account_id,
        account_name,
        owner_email,
        region,
        plan,
        industry,
        created_date

    from accounts

)

select * from directory
