"""raw.usage_events: the largest table (millions of rows), so only checks GX
turns into one aggregate SQL pass: no per-row queries."""

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
        *not_after_load("usage_events", "occurred_at", run),
        known_accounts(),
        *rows_from_latest_load("usage_events", run),
        *no_repeated_rows_in_latest_load("usage_events", run),
    ]


SUITE = SuiteSpec(name="raw_usage_events", table="raw.usage_events", build=build)
