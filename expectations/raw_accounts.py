"""raw.accounts: the account list every other table is checked against."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, rows_from_latest_load, unique_id, well_formed_email


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("account_id"),
        # The CSM who gets alerts and digests; a bad address loses mail, not data.
        well_formed_email("owner_email"),
        *rows_from_latest_load("accounts", run),
    ]


SUITE = SuiteSpec(name="raw_accounts", table="raw.accounts", build=build)
