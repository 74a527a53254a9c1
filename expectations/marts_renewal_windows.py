"""marts.renewal_windows: one row per active contract; the windows time renewal
alerts and upgrade offers to customers, so every inconsistency is critical."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, critical, no_rows, unique_id

RENEWAL_WINDOWS = ["overdue", "0-2m", "2-4m", "4-6m", "6m+"]


def build(run: RunParams) -> list[gxe.Expectation]:
    as_of = f"date '{run.as_of.isoformat()}'"
    return [
        *unique_id("contract_id"),
        critical(gxe.ExpectColumnValuesToNotBeNull(column="renewal_window")),
        critical(gxe.ExpectColumnValuesToBeInSet(column="renewal_window", value_set=RENEWAL_WINDOWS)),
        critical(
            no_rows(
                "renewal_window is 'overdue' exactly when days_to_renewal is negative",
                "(renewal_window = 'overdue') is distinct from (days_to_renewal < 0)",
                columns="contract_id, end_date, days_to_renewal, renewal_window",
            )
        ),
        critical(
            no_rows(
                f"days_to_renewal = end_date - as_of ({run.as_of.isoformat()})",
                f"days_to_renewal is distinct from (end_date - {as_of})",
                columns="contract_id, end_date, days_to_renewal",
            )
        ),
        # The contract's calendar-month bounds (data-contract.md section 3).
        critical(
            no_rows(
                "renewal_window matches end_date in calendar months from as_of "
                "(0-2m: before +2 months; 2-4m: +2 to +4 months inclusive; 4-6m: up to +6 months)",
                f"""renewal_window is distinct from case
                      when end_date < {as_of} then 'overdue'
                      when end_date < {as_of} + interval '2 months' then '0-2m'
                      when end_date <= {as_of} + interval '4 months' then '2-4m'
                      when end_date <= {as_of} + interval '6 months' then '4-6m'
                      else '6m+'
                    end""",
                columns="contract_id, end_date, renewal_window",
            )
        ),
    ]


SUITE = SuiteSpec(name="marts_renewal_windows", table="marts.renewal_windows", build=build)
