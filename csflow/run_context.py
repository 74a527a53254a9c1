"""The logical date of a run, written where dbt models can read it.

Models read `as_of` from the one-row table ops.run_context instead of a
`--vars` value: a var that changes every run would force dbt to re-parse
the whole project each time.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from csflow.config import Settings


def today(settings: Settings) -> date:
    """Today in the configured time zone: the default as_of."""
    return datetime.now(settings.tz).date()


def parse_as_of(value: str | date | None, settings: Settings) -> date:
    if value is None or value == "":
        return today(settings)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"as_of: {value!r} is not a date like 2026-03-31") from None


def write_run_context(engine: sa.Engine, as_of: date, run_id: str, timezone: str) -> None:
    """One row: the run's as_of and the time zone in which days are counted."""
    with engine.begin() as conn:
        conn.execute(sa.text("delete from ops.run_context"))
        conn.execute(
            sa.text("insert into ops.run_context (as_of_date, timezone, run_id) values (:as_of, :tz, :run_id)"),
            {"as_of": as_of, "tz": timezone, "run_id": run_id},
        )
        # Without statistics the planner guesses hundreds of rows for this
        # one-row table, and every model that joins it gets a bad plan.
        conn.execute(sa.text("analyze ops.run_context"))
