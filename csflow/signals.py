"""Daily signal history: `account_signals_daily` for a range of past days.

The nightly build adds as_of's row per account. For history (a first
install, a backtest over last year) the same model builds a range of days in
one set-based pass: its vars signals_from and signals_to name the days, and
it replaces only those. Only data on or before each day counts, so the rows
for a past day are what a run on that day would have seen of the data loaded
now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from csflow.config import Settings
from csflow.dbt import run_dbt
from csflow.run_context import write_run_context
from csflow.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignalHistory:
    first: date
    last: date
    rows: int  # rows of account_signals_daily now held for those days
    accounts: int
    health_days: tuple[date, ...] = ()  # days account_health was built for too


# account_health for past days is a build per day (its windows are as of the
# run's as_of): every fourth week back from the latest as_of, the days the
# churn model observes (csflow.churn.OBSERVATION_STEP_DAYS x 4).
HEALTH_STEP_DAYS = 28
# account_health and what it reads, for one day. dbt replaces a table or view
# by dropping the old one with CASCADE, which takes the views built on it
# outside this selection along: the last step is a whole `dbt run` as of the
# latest run's day, which leaves the project as the nightly build does.
HEALTH_BUILD = ["run", "--select", "+account_health"]


def current_as_of(engine: sa.Engine) -> date | None:
    """The as_of of the warehouse's latest run (ops.run_context), if any."""
    with engine.connect() as conn:
        return conn.execute(sa.text("select max(as_of_date) from ops.run_context")).scalar_one()


def build_signal_history(
    warehouse: Warehouse, settings: Settings, first: date, last: date, with_health: bool = False
) -> SignalHistory:
    """Build account_signals_daily for every day from first to last (replacing those days).

    The days must end by the as_of of the warehouse's latest run: the models
    the signals read (accounts, their currencies) are built as of that day.
    with_health: also build account_health for every HEALTH_STEP_DAYS-th day
    back from the latest as_of, so backtests and the churn model's card can
    judge the health score against churn (one dbt run per day; the run
    context is put back as it was).
    """
    if first > last:
        raise ValueError(f"signals: the first day {first} is after the last {last}")
    engine = warehouse.engine()
    try:
        as_of = current_as_of(engine)
        if as_of is None:
            raise ValueError("signals: the warehouse has no run yet; run `csflow run` (or `csflow demo`) first")
        if last > as_of:
            raise ValueError(
                f"signals: the last day {last} is after the latest run's as_of {as_of}; "
                f"build up to {as_of}, or run the pipeline for {last} first"
            )
        log.info("building account_signals_daily for %s to %s (%d days)", first, last, (last - first).days + 1)
        # The daily rollups it reads are incremental and current since the latest run: only the model runs.
        run_dbt(
            warehouse,
            settings,
            ["run", "--select", "account_signals_daily"],
            use_prefect=False,
            dbt_vars={"signals_from": first.isoformat(), "signals_to": last.isoformat()},
        )
        health_days: tuple[date, ...] = ()
        if with_health:
            health_days = tuple(
                day for k in range(1, (as_of - first).days // HEALTH_STEP_DAYS + 1)
                if first <= (day := as_of - timedelta(days=k * HEALTH_STEP_DAYS)) <= last
            )
            _build_health_history(warehouse, settings, engine, health_days)
        with engine.connect() as conn:
            rows, accounts = conn.execute(
                sa.text(
                    "select count(*), count(distinct account_id) from marts.account_signals_daily "
                    "where signal_date between :first and :last"
                ),
                {"first": first, "last": last},
            ).one()
    finally:
        engine.dispose()
    return SignalHistory(first, last, rows, accounts, health_days)


def _build_health_history(warehouse: Warehouse, settings: Settings, engine: sa.Engine, days: tuple[date, ...]) -> None:
    """account_health for each past day (oldest first), then the latest as_of's models again."""
    with engine.connect() as conn:
        context = conn.execute(sa.text("select as_of_date, run_id, timezone from ops.run_context")).one()
    try:
        for day in sorted(days):
            log.info("building account_health for %s", day)
            write_run_context(engine, day, f"health history {day}", context.timezone)
            run_dbt(warehouse, settings, HEALTH_BUILD, use_prefect=False)
    finally:
        write_run_context(engine, context.as_of_date, context.run_id, context.timezone)
        run_dbt(warehouse, settings, ["run"], use_prefect=False)
