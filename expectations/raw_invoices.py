"""raw.invoices: payment history (a health score component)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, known_accounts, rows_from_latest_load, unique_id


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("invoice_id"),
        known_accounts(),
        *rows_from_latest_load("invoices", run),
    ]


SUITE = SuiteSpec(name="raw_invoices", table="raw.invoices", build=build)
