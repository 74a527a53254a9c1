{#-
    One row per account: who it is, who owns it, where it is. What csflow's
    Python reads about accounts (the playbook engine's locales, the digests'
    names and owners, the demo's tour, the workspace's sign-in), so it reads no
    staging model. owner_email is lower case: the workspace finds a CSM's
    accounts by it.
-#}

{{ config(indexes=[{'columns': ['account_id'], 'unique': true}, {'columns': ['owner_email']}]) }}

with

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

directory as (

    select
        account_id,
        account_name,
        lower(owner_email) as owner_email,
        region,
        plan,
        industry,
        created_date

    from accounts

)

select * from directory
