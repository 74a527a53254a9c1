"""raw.contracts: ARR and renewal dates, the base of renewal alerts and retention KPIs."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, known_accounts, rows_from_latest_load, unique_id


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("contract_id"),
        # Negative ARR or a contract ending before it starts makes GRR/NRR and
        # renewal windows meaningless.
        critical(gxe.ExpectColumnValuesToBeBetween(column="arr", min_value=0)),
        critical(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end_date", column_B="start_date", or_equal=True)
        ),
        known_accounts(),
        *rows_from_latest_load("contracts", run),
    ]


SUITE = SuiteSpec(name="raw_contracts", table="raw.contracts", build=build)
