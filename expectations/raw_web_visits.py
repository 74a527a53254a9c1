"""raw.web_visits: pricing and product page interest (high_interest playbook)."""

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
        *not_after_load("web_visits", "visited_at", run),
        known_accounts(),
        *rows_from_latest_load("web_visits", run),
        *no_repeated_rows_in_latest_load("web_visits", run),
    ]


SUITE = SuiteSpec(name="raw_web_visits", table="raw.web_visits", build=build)
