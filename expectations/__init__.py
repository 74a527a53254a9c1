"""Great Expectations suites as code for the raw inputs, one module per checked table.

`csflow.validation.run_validation` builds each suite for the run (`RunParams`:
as_of and the latest load of each entity), validates it against its table in
PostgreSQL and closes the gate on any failed expectation marked critical. The
marts are guarded by dbt's tests (dbt_project/), whose results join these in
the same gate: each check is written once, in one engine. Add a suite: write
`raw_<table>.py` with a `SUITE`, and list it below.
"""

from __future__ import annotations

from expectations import (
    raw_accounts,
    raw_contacts,
    raw_contracts,
    raw_email_events,
    raw_invoices,
    raw_orders,
    raw_support_tickets,
    raw_survey_responses,
    raw_trainings,
    raw_usage_events,
    raw_web_visits,
)
from expectations._base import CRITICAL, WARNING, LatestLoad, RunParams, SuiteSpec

RAW_SUITES: list[SuiteSpec] = [
    raw_accounts.SUITE,
    raw_contacts.SUITE,
    raw_contracts.SUITE,
    raw_orders.SUITE,
    raw_usage_events.SUITE,
    raw_web_visits.SUITE,
    raw_email_events.SUITE,
    raw_support_tickets.SUITE,
    raw_survey_responses.SUITE,
    raw_trainings.SUITE,
    raw_invoices.SUITE,
]
# name -> suite, in validation order.
SUITES: dict[str, SuiteSpec] = {s.name: s for s in RAW_SUITES}

__all__ = ["CRITICAL", "RAW_SUITES", "SUITES", "WARNING", "LatestLoad", "RunParams", "SuiteSpec"]
