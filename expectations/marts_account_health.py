"""marts.account_health: one row per account per as_of; the run's slice decides
who gets usage-decline and renewal treatment, so it is checked for this as_of only
(earlier slices were checked by their own runs)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, no_rows, unique_id

HEALTH_BANDS = ["green", "yellow", "red"]
# Component scores (data-contract.md: each 0-100); null when the component has no data.
COMPONENT_SCORES = [
    "usage_trend_score",
    "adoption_breadth_score",
    "nps_score",
    "support_load_score",
    "payment_history_score",
    "marketing_engagement_score",
]


def build(run: RunParams) -> list[gxe.Expectation]:
    green, yellow = float(run.health_green_min), float(run.health_yellow_min)
    return [
        # No rows for as_of means the build did not score this run: stale data would act.
        critical(gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        # One row per (account_id, as_of_date): the batch is already one as_of_date.
        *unique_id("account_id"),
        *(
            critical(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=100))
            for column in ["health_score", *COMPONENT_SCORES]
        ),
        critical(gxe.ExpectColumnValuesToBeInSet(column="health_band", value_set=HEALTH_BANDS)),
        critical(
            no_rows(
                f"health_band agrees with health_score (green from {green:g}, yellow from {yellow:g}, "
                f"red below {yellow:g})",
                f"""health_band is distinct from case
                      when health_score >= {green!r} then 'green'
                      when health_score >= {yellow!r} then 'yellow'
                      when health_score is not null then 'red'
                    end""",
                columns="account_id, as_of_date, health_score, health_band",
            )
        ),
    ]


SUITE = SuiteSpec(name="marts_account_health", table="marts.account_health", build=build, as_of_column="as_of_date")
