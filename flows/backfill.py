"""Backfill: run the pipeline for a range of past dates, oldest first.

Each date is a full run of `run_pipeline` (a subflow) on the same landing
folder, which is loaded once, for the first date. Past dates fire no plays
unless asked: they are held, not recorded, so an occasion that is still
current fires on today's run, and one that has passed is not emailed late,
to customers or CSMs. The marts, the health history and the KPI history are
built as they would have been. The playbook ledger makes a backfill safe to
repeat or to overlap with the nightly runs: no occasion fires twice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from csflow.alerts import alert_on_failure
from csflow.config import load_settings
from csflow.playbooks import PAST_DATE
from flows.run_pipeline import run_pipeline

MAX_DAYS = 366


def backfill_dates(start: date, end: date, today: date) -> list[date]:
    """The dates to run, oldest first; a ValueError says what is wrong with the range."""
    if start > end:
        raise ValueError(f"backfill: start {start} is after end {end}")
    if end > today:
        raise ValueError(f"backfill: end {end} is in the future (today is {today})")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValueError(f"backfill: {days} days asked; split ranges longer than {MAX_DAYS} days")
    return [start + timedelta(days=i) for i in range(days)]


@flow(name="backfill", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def backfill(
    start: date,
    end: date,
    landing_dir: str | None = None,
    fire_past_dates: bool = False,
) -> list[dict[str, Any]]:
    """Run run_pipeline for every date from start to end (inclusive), oldest first.

    A failed date stops the backfill (later dates would build on it); rerun
    the same range once fixed, since repeated dates fire and send nothing twice.
    """
    settings = load_settings()
    today = datetime.now(settings.tz).date()
    dates = backfill_dates(start, end, today)
    logger = get_run_logger()
    logger.info("backfill %s..%s: %d run(s), plays fired for past dates: %s", start, end, len(dates), fire_past_dates)
    rows = []
    for i, day in enumerate(dates):
        summary = run_pipeline(
            as_of=day,
            landing_dir=landing_dir,
            send=True,
            past_date=day < today and not fire_past_dates,
            ingest=i == 0,
        )
        rows.append(
            {
                "as_of": summary.as_of.isoformat(),
                "gate_open": summary.gate_open,
                "fired": summary.fired,
                "held_past_date": summary.held(PAST_DATE),
                "sent": summary.delivery.sent,
                "seconds": round(sum(summary.timings.values()), 1),
            }
        )
        logger.info("backfill %d/%d: %s done (%d fired)", i + 1, len(dates), day, rows[-1]["fired"])
    create_table_artifact(key="backfill", table=rows, description=f"csflow backfill {start}..{end}")
    return rows
