"""raw.contacts: the people customer email goes to."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import (
    RunParams,
    SuiteSpec,
    known_accounts,
    rows_from_latest_load,
    unique_id,
    well_formed_email,
)


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("contact_id"),
        well_formed_email("email"),
        known_accounts(),
        *rows_from_latest_load("contacts", run),
    ]


SUITE = SuiteSpec(name="raw_contacts", table="raw.contacts", build=build)
