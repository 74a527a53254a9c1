{#-
    One row per account: who it is, who owns it, where it is, and what a CSM
    needs at a glance (today's health, the ARR of its active contracts). What
    csflow's Python reads about accounts (the playbook engine's locales and
    alert context, the digests' names and owners, the demo's tour, the
    workspace's sign-in), so it reads no staging model. owner_email is lower
    case: the workspace finds a CSM's accounts by it.
-#}

{{ config(indexes=[{'columns': ['account_id'], 'unique': true}, {'columns': ['owner_email']}]) }}

with

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

profiles as (

    select * from {{ ref('int_accounts_profiled') }}

),

health as (

    select * from {{ ref('account_health') }}

),

renewal_windows as (

    select * from {{ ref('renewal_windows') }}

),

active_arr as (

    -- active contracts are in the account currency (as the audiences assume)
    select
        account_id,
        sum(arr) as arr

    from renewal_windows
    group by account_id

),

directory as (

    select
        accounts.account_id,
        accounts.account_name,
        lower(accounts.owner_email) as owner_email,
        accounts.owner_name,
        accounts.region,
        accounts.plan,
        accounts.industry,
        accounts.created_date,
        health.health_score,
        health.health_band,
        active_arr.arr,
        profiles.currency,
        round(active_arr.arr * profiles.fx_rate_to_base, 2) as arr_base

    from accounts
    left join profiles
        on accounts.account_id = profiles.account_id
    left join health
        on accounts.account_id = health.account_id
        and health.as_of_date = profiles.as_of_date
    left join active_arr
        on accounts.account_id = active_arr.account_id

)

select * from directory
