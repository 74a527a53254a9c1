"""marts.account_segments: one row per account; priority and touch tier pick
who gets a CSM alert and who gets an automated email."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, unique_id

PRIORITIES = ["high", "medium", "low", "none"]
TOUCH_TIERS = ["high_touch", "low_touch", "tech_touch"]


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("account_id"),
        critical(gxe.ExpectColumnValuesToNotBeNull(column="priority")),
        critical(gxe.ExpectColumnValuesToBeInSet(column="priority", value_set=PRIORITIES)),
        critical(gxe.ExpectColumnValuesToNotBeNull(column="touch_tier")),
        critical(gxe.ExpectColumnValuesToBeInSet(column="touch_tier", value_set=TOUCH_TIERS)),
    ]


SUITE = SuiteSpec(name="marts_account_segments", table="marts.account_segments", build=build)
