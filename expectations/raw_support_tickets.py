"""raw.support_tickets: support load (inquiry_surge playbook, health score)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import (
    RunParams,
    SuiteSpec,
    known_accounts,
    not_after_load,
    rows_from_latest_load,
    unique_id,
    warning,
)


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("ticket_id"),
        *not_after_load("support_tickets", "opened_at", run),
        # Resolution before opening skews resolution times, nothing customer-facing.
        warning(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="resolved_at", column_B="opened_at", or_equal=True, ignore_row_if="either_value_is_missing"
            )
        ),
        known_accounts(),
        *rows_from_latest_load("support_tickets", run),
    ]


SUITE = SuiteSpec(name="raw_support_tickets", table="raw.support_tickets", build=build)
