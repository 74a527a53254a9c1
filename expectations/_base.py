"""What every suite module shares: run parameters, severities, a suite spec and
a SQL-query expectation that reports sample rows.

Suites are functions of the run (`RunParams`) rather than static JSON, because
some bounds only exist at validation time: "no timestamp after its file was
loaded" and "rows were loaded" need the latest load of each entity from
`raw.loads`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column

from csflow.addresses import ADDRESS_PATTERN
from csflow.validation import CRITICAL, SEVERITIES, WARNING

# Rows naming an account missing from raw.accounts may make up this share of a
# table before the warning fires; every such row is still counted in the results.
UNKNOWN_ACCOUNT_MOSTLY = 0.99
# A row stamped later than its file was loaded, by more than this, cannot be true.
CLOCK_SKEW = timedelta(hours=1)
# Rows a query expectation keeps as examples of what failed.
SAMPLE_ROWS = 5

E = TypeVar("E", bound=gxe.Expectation)


@dataclass(frozen=True)
class LatestLoad:
    """The latest finished row of raw.loads for an entity: the file given most recently."""

    load_id: int
    file_name: str
    status: str
    started_at: datetime


@dataclass(frozen=True)
class RunParams:
    """What a suite may depend on besides the table itself."""

    as_of: date
    latest_loads: dict[str, LatestLoad] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: its name, the table it checks and how to build its expectations."""

    name: str
    table: str  # schema.table
    build: Callable[[RunParams], list[gxe.Expectation]]

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


def _with_severity(expectation: E, severity: str) -> E:
    # meta is what csflow reads; GX's own `severity` field is kept in step so
    # Data Docs and any GX tooling agree.
    expectation.meta = {**(expectation.meta or {}), "severity": severity}
    expectation.severity = FailureSeverity(severity)
    return expectation


def critical(expectation: E) -> E:
    """Mark an expectation whose failure must stop playbooks from acting."""
    return _with_severity(expectation, CRITICAL)


def warning(expectation: E) -> E:
    """Mark an expectation whose failure is reported but lets the run act."""
    return _with_severity(expectation, WARNING)


def severity_of(meta: dict[str, Any] | None, fallback: object = None) -> str:
    """Severity of an expectation (from its meta); unknown means critical, to fail closed."""
    value = (meta or {}).get("severity") or getattr(fallback, "value", fallback)
    return value if value in SEVERITIES else CRITICAL


def jsonable(value: Any) -> Any:
    """Dates, decimals and rows as JSON values (for samples in results and ops tables).

    Decimals become strings (no precision lost), non-finite floats too (jsonb has no NaN).
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


class ExpectNoUnexpectedRows(gxe.UnexpectedRowsExpectation):
    """UnexpectedRowsExpectation that also returns a few of the offending rows.

    GX's own class drops the rows unless result_format is COMPLETE, and
    COMPLETE makes every column expectation fetch all unexpected values. The
    rows are fetched anyway (a metric the expectation depends on), so keeping a
    sample costs nothing. The query runs in PostgreSQL; use it on mart-sized
    tables, since the driver buffers up to the full unexpected result.
    """

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: object = None,
    ) -> dict:
        count = int(metrics["unexpected_rows_query.row_count"])
        rows = metrics["unexpected_rows_query.table"] or []
        # Same shape as GX's COMPLETE result, cut to a sample; observed_value is the count.
        return {
            "success": count == 0,
            "result": {"observed_value": count, "details": {"unexpected_rows": jsonable(rows[:SAMPLE_ROWS])}},
        }


def no_rows(description: str, where: str, columns: str = "*") -> ExpectNoUnexpectedRows:
    """A query expectation: no row of the table matches `where`."""
    return ExpectNoUnexpectedRows(
        description=description,
        unexpected_rows_query=f"select {columns} from {{batch}} where {where}",
    )


# --------------------------------------------------------------------------
# Building blocks of the raw suites


def unique_id(*columns: str) -> list[gxe.Expectation]:
    """The contract key: present and unique (duplicates would double-count in every mart)."""
    if len(columns) == 1:
        return [
            critical(gxe.ExpectColumnValuesToNotBeNull(column=columns[0])),
            critical(gxe.ExpectColumnValuesToBeUnique(column=columns[0])),
        ]
    return [critical(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns)))]


def not_after_load(entity: str, column: str, run: RunParams) -> list[gxe.Expectation]:
    """A row stamped after its file was loaded cannot be true: a wrong clock or a wrong time zone.

    Rows after the run's as_of are not checked here: a rerun of a past date
    over a later export sees them, and the marts simply do not use them. Every
    row of the table was loaded by the latest load or before it, so its load
    time (plus CLOCK_SKEW) bounds them all.
    """
    load = run.latest_loads.get(entity)
    if load is None:
        return []
    bound = load.started_at + CLOCK_SKEW
    return [
        critical(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                max_value=bound,
                description=f"{column} at or before the file was loaded (+{CLOCK_SKEW}): {bound.isoformat()}",
            )
        )
    ]


def known_accounts() -> gxe.Expectation:
    """Rows naming an account missing from raw.accounts: kept by ingest, reported here."""
    return warning(
        gxe.ExpectColumnValuesToBeInSet(column="_unknown_account", value_set=[False], mostly=UNKNOWN_ACCOUNT_MOSTLY)
    )


def well_formed_email(column: str) -> gxe.Expectation:
    """Ingest rejects malformed addresses; this catches rows written around it. One address fails one email."""
    return warning(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=ADDRESS_PATTERN))


def rows_from_latest_load(entity: str, run: RunParams) -> list[gxe.Expectation]:
    """A file given in the latest ingest must have loaded rows; an absent file means "no data"."""
    load = run.latest_loads.get(entity)
    if load is None:
        return []
    return [
        critical(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=1,
                row_condition=Column("_load_id") == load.load_id,
                description=f"the latest file, {load.file_name} (load {load.load_id}, {load.status}), loaded rows",
            )
        )
    ]


def event_suite(entity: str) -> SuiteSpec:
    """The suite of an event table: nothing stamped after its file was loaded, known
    accounts, rows from the latest file. (That no event is repeated is ingest's own
    guarantee, by key, tested in tests/test_ingest.py: regrouping a first night's
    50 million events here cost four minutes.)"""
    from csflow.contract import ENTITIES

    stamp = ENTITIES[entity].stamped_by
    assert stamp is not None, entity

    def build(run: RunParams) -> list[gxe.Expectation]:
        return [
            *not_after_load(entity, stamp, run),
            known_accounts(),
            *rows_from_latest_load(entity, run),
        ]

    return SuiteSpec(name=f"raw_{entity}", table=f"raw.{entity}", build=build)
