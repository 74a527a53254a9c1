"""Great Expectations suites as code, one module per checked table (named after it).

`csflow.validation.run_validation` builds each suite for the run (`RunParams`:
as_of, the latest load of each entity, health band bounds), validates it
against its table in PostgreSQL and closes the gate on any failed expectation
marked critical. Add a suite: write `<schema>_<table>.py` with a `SUITE`, and
list it below.
"""

from __future__ import annotations

from expectations import (
    marts_account_health,
    marts_account_segments,
    marts_kpi_monthly,
    marts_purchase_trends,
    marts_renewal_windows,
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
MART_SUITES: list[SuiteSpec] = [
    marts_purchase_trends.SUITE,
    marts_renewal_windows.SUITE,
    marts_account_health.SUITE,
    marts_account_segments.SUITE,
    marts_kpi_monthly.SUITE,
]
# name -> suite, in validation order (raw first: a broken input explains a broken mart).
SUITES: dict[str, SuiteSpec] = {s.name: s for s in RAW_SUITES + MART_SUITES}

__all__ = ["CRITICAL", "MART_SUITES", "RAW_SUITES", "SUITES", "WARNING", "LatestLoad", "RunParams", "SuiteSpec"]
