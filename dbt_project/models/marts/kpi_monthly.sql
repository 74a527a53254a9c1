{#-
    One row per calendar month, from the month of the earliest contract start
    (at most var('kpi_monthly_max_months') back) to as_of's month. Retention
    is measured over the accounts active on the month's first day; ARR is in
    var('base_currency'). Only data at or before as_of counts, so as_of's own
    month is partial (is_complete_month = false).
-#}
with

months as (

    select * from {{ ref('int_kpi_months_spined') }}

),

account_months as (

    select * from {{ ref('int_kpi_accounts_rolled_to_months') }}

),

orders as (

    select * from {{ ref('int_orders_filtered_to_as_of') }}

),

survey_responses as (

    select * from {{ ref('stg_landing__survey_responses') }}

),

accounts as (

    select * from {{ ref('stg_landing__accounts') }}

),

run_context as (

    select * from {{ ref('stg_ops__run_context') }}

),

retention_summed as (

    select
        month_start,
        count(*) as active_accounts_start,
        count(*) filter (where is_churned) as churned_accounts,
        sum(arr_start_base) as arr_start_base,
        sum(arr_start_base) filter (where is_churned) as churned_arr_base,
        -- not least(): it skips nulls (ARR in a currency fx_to_base lacks)
        sum(
            case when arr_end_base < arr_start_base then arr_end_base else arr_start_base end
        ) as arr_end_capped_base,
        sum(arr_end_base) as arr_end_base

    from account_months

    group by month_start

),

orders_rolled_to_months as (

    select
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        account_id,
        bool_or(order_type = 'upsell') as has_upsell_order,
        bool_or(order_type = 'cross_sell') as has_cross_sell_order

    from orders

    group by 1, 2

),

expansions_counted as (

    -- only accounts active at the month's start count, so the rates stay in 0..1
    select
        account_months.month_start,
        count(*) filter (where orders_rolled_to_months.has_upsell_order) as upsell_accounts,
        count(*) filter (where orders_rolled_to_months.has_cross_sell_order) as cross_sell_accounts

    from account_months
    inner join orders_rolled_to_months
        on account_months.month_start = orders_rolled_to_months.month_start
        and account_months.account_id = orders_rolled_to_months.account_id

    group by account_months.month_start

),

responses_dated as (

    select
        survey_responses.survey_type,
        survey_responses.score,
        cast(
            survey_responses.responded_at at time zone (select timezone from run_context) as date
        ) as response_date,
        (select as_of_date from run_context) as as_of_date

    from survey_responses
    inner join accounts
        on survey_responses.account_id = accounts.account_id

    where survey_responses.survey_type in ('nps', 'csat')

),

surveys_summarised as (

    select
        cast({{ dbt.date_trunc('month', 'response_date') }} as date) as month_start,
        count(*) filter (where survey_type = 'nps' and score between 0 and 10) as nps_response_count,
        count(*) filter (
            where survey_type = 'nps' and score between {{ var('nps_promoter_min_score') }} and 10
        ) as nps_promoters,
        count(*) filter (
            where survey_type = 'nps' and score between 0 and {{ var('nps_detractor_max_score') }}
        ) as nps_detractors,
        count(*) filter (where survey_type = 'csat') as csat_response_count,
        avg(score) filter (where survey_type = 'csat') as csat_avg

    from responses_dated

    where response_date <= as_of_date

    group by 1

),

kpis_computed as (

    select
        months.month_start as month,
        coalesce(retention_summed.active_accounts_start, 0) as active_accounts_start,
        coalesce(retention_summed.churned_accounts, 0) as churned_accounts,
        1.0 * (retention_summed.active_accounts_start - retention_summed.churned_accounts)
            / nullif(retention_summed.active_accounts_start, 0) as logo_retention_rate,
        retention_summed.arr_end_capped_base
            / nullif(retention_summed.arr_start_base, 0) as gross_revenue_retention,
        retention_summed.arr_end_base
            / nullif(retention_summed.arr_start_base, 0) as net_revenue_retention,
        100.0 * (surveys_summarised.nps_promoters - surveys_summarised.nps_detractors)
            / nullif(surveys_summarised.nps_response_count, 0) as nps,
        surveys_summarised.csat_avg,
        1.0 * coalesce(expansions_counted.upsell_accounts, 0)
            / nullif(retention_summed.active_accounts_start, 0) as upsell_rate,
        1.0 * coalesce(expansions_counted.cross_sell_accounts, 0)
            / nullif(retention_summed.active_accounts_start, 0) as cross_sell_rate,
        months.month_end_date,
        months.is_complete_month,
        coalesce(surveys_summarised.nps_response_count, 0) as nps_response_count,
        coalesce(surveys_summarised.csat_response_count, 0) as csat_response_count,
        retention_summed.arr_start_base,
        coalesce(retention_summed.churned_arr_base, 0) as churned_arr_base

    from months
    left join retention_summed
        on months.month_start = retention_summed.month_start
    left join expansions_counted
        on months.month_start = expansions_counted.month_start
    left join surveys_summarised
        on months.month_start = surveys_summarised.month_start

)

select * from kpis_computed
