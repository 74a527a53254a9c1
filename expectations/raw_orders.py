"""raw.orders: purchases behind purchase_trends, upsell and cross-sell rates."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, known_accounts, not_after_load, rows_from_latest_load, unique_id


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("order_id"),
        *not_after_load("orders", "ordered_at", run),
        known_accounts(),
        *rows_from_latest_load("orders", run),
    ]


SUITE = SuiteSpec(name="raw_orders", table="raw.orders", build=build)
