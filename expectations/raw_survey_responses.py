"""raw.survey_responses: NPS and CSAT scores (nps_detractor playbook, KPIs)."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from expectations._base import (
    RunParams,
    SuiteSpec,
    critical,
    known_accounts,
    not_after_load,
    rows_from_latest_load,
    unique_id,
)


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        *unique_id("response_id"),
        # An impossible score would fire (or hide) detractor alerts and skew NPS.
        critical(
            gxe.ExpectColumnValuesToBeBetween(
                column="score", min_value=0, max_value=10, row_condition=Column("survey_type") == "nps"
            )
        ),
        critical(
            gxe.ExpectColumnValuesToBeBetween(
                column="score", min_value=1, max_value=5, row_condition=Column("survey_type") == "csat"
            )
        ),
        *not_after_load("survey_responses", "responded_at", run),
        known_accounts(),
        *rows_from_latest_load("survey_responses", run),
    ]


SUITE = SuiteSpec(name="raw_survey_responses", table="raw.survey_responses", build=build)
