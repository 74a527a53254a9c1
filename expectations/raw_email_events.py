"""raw.email_events: marketing engagement (cross-sell clicks)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import (
    RunParams,
    SuiteSpec,
    known_accounts,
    no_repeated_rows_in_latest_load,
    not_after_load,
    rows_from_latest_load,
)


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *not_after_load("email_events", "occurred_at", run),
        known_accounts(),
        *rows_from_latest_load("email_events", run),
        *no_repeated_rows_in_latest_load("email_events", run),
    ]


SUITE = SuiteSpec(name="raw_email_events", table="raw.email_events", build=build)
