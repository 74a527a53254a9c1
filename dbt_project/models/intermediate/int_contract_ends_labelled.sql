{#-
    How each contract that has ended came out, as known on as_of: churned
    (its status says so, or no contract of the account started between its
    start and churn_grace_days after its end) or renewed (one did), and
    whether the renewal grew ARR (in base currency). A contract whose end is
    fewer than churn_grace_days before as_of and that has no follower yet is
    not labelled: its outcome is not known. One row per labelled contract.
-#}

with

contracts as (

    select * from {{ ref('stg_landing__contracts') }}

),

accounts as (

    select * from {{ ref('int_accounts_profiled') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

followed as (

    -- the contract that follows each one: the first to start after it, by the grace days after its end
    select
        contracts.contract_id,
        contracts.account_id,
        contracts.end_date,
        contracts.status,
        contracts.arr,
        next_contract.arr as next_arr,
        next_contract.start_date as next_start_date

    from contracts
    left join lateral (
        select later.arr, later.start_date
        from contracts as later
        where later.account_id = contracts.account_id
            and later.contract_id <> contracts.contract_id
            and later.start_date > contracts.start_date
            and later.start_date <= contracts.end_date + {{ var('churn_grace_days') }}
        order by later.start_date, later.contract_id
        limit 1
    ) as next_contract on true
    where contracts.end_date <= (select as_of_date from run_context)

),

labelled as (

    select
        followed.account_id,
        followed.contract_id,
        followed.end_date,
        case
            when followed.status = 'churned' or followed.next_start_date is null then 'churned'
            else 'renewed'
        end as outcome,
        coalesce(followed.status <> 'churned' and followed.next_arr > followed.arr, false) as is_expanded,
        round(followed.arr * accounts.fx_rate_to_base, 2) as arr_base

    from followed
    inner join accounts
        on followed.account_id = accounts.account_id
    where followed.status = 'churned'
        or followed.next_start_date is not null
        or followed.end_date + {{ var('churn_grace_days') }} <= (select as_of_date from run_context)

)

select * from labelled
