"""marts.kpi_monthly: one row per calendar month, read by leadership. A rate
outside its mathematical range means the mart logic is broken."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, no_rows, unique_id

# column: (min, max); None is unbounded. Nulls (no data that month) pass.
RATE_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "logo_retention_rate": (0, 1),
    "gross_revenue_retention": (0, 1),
    "net_revenue_retention": (0, None),
    "upsell_rate": (0, 1),
    "cross_sell_rate": (0, 1),
    "nps": (-100, 100),
    "csat_avg": (1, 5),
}


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("month"),
        critical(
            no_rows(
                "month is the first day of a calendar month",
                "month <> date_trunc('month', month)::date",
                columns="month",
            )
        ),
        *(
            critical(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
            for column, (low, high) in RATE_BOUNDS.items()
        ),
    ]


SUITE = SuiteSpec(name="marts_kpi_monthly", table="marts.kpi_monthly", build=build)
