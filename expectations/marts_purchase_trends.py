"""marts.purchase_trends: one row per account with at least one order."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, no_rows, unique_id, warning


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("account_id"),
        critical(gxe.ExpectColumnValuesToBeBetween(column="order_count", min_value=1)),
        # Internal consistency of the summary: wrong, but nobody is emailed because of it.
        warning(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="last_order_date", column_B="first_order_date", or_equal=True
            )
        ),
        warning(
            no_rows(
                "BTYD summary is consistent: frequency from 0 to order_count - 1, recency_days from 0 to tenure_days",
                "frequency < 0 or frequency >= order_count or recency_days < 0 or recency_days > tenure_days",
                columns="account_id, order_count, frequency, recency_days, tenure_days",
            )
        ),
    ]


SUITE = SuiteSpec(name="marts_purchase_trends", table="marts.purchase_trends", build=build)
