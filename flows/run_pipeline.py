"""The nightly pipeline: ingest -> dbt build (later: validate, playbooks, deliver)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from csflow.config import load_settings
from csflow.dbt import DbtResult, run_dbt
from csflow.ingest import IngestReport, ingest_folder
from csflow.run_context import parse_as_of, write_run_context
from csflow.warehouse import Warehouse, open_warehouse


# Ingest is safe to retry: each file loads in one transaction and replaces by key.
@task(name="ingest", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def ingest_task(warehouse: Warehouse, landing_dir: Path) -> IngestReport:
    logger = get_run_logger()
    last_logged: dict[str, int] = {}

    def progress(entity: str, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct >= last_logged.get(entity, -10) + 10:  # a line every 10%
            last_logged[entity] = pct
            logger.info("ingest %s: %d%%", entity, pct)

    engine = warehouse.engine()
    try:
        report = ingest_folder(engine, landing_dir, progress)
    finally:
        engine.dispose()
    for f in report.files:
        if f.status == "rejected":
            logger.error("%s rejected: %s", f.file, f.message)
        else:
            logger.info(
                "%s: %d loaded, %d rejected, %d unknown account",
                f.file, f.rows_loaded, f.rows_rejected, f.rows_unknown_account,
            )
    return report


@task(name="run context", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def run_context_task(warehouse: Warehouse, as_of: date, run_id: str, timezone: str) -> None:
    engine = warehouse.engine()
    try:
        write_run_context(engine, as_of, run_id, timezone)
    finally:
        engine.dispose()


@flow(name="run_pipeline", log_prints=False)
def run_pipeline(as_of: date | None = None, landing_dir: str | None = None) -> dict[str, Any]:
    """Load the landing folder and build the dbt project for one logical date."""
    settings = load_settings()
    as_of_date = parse_as_of(as_of, settings)
    landing = Path(landing_dir) if landing_dir else settings.landing_dir
    logger = get_run_logger()
    logger.info("run_pipeline as_of=%s landing=%s", as_of_date, landing)
    with open_warehouse(settings) as warehouse:
        report = ingest_task(warehouse, landing)
        run_context_task(warehouse, as_of_date, str(flow_run.get_id() or "local"), settings.timezone)
        # One dbt build; PrefectDbtRunner makes each node a task of this flow.
        dbt_result: DbtResult = run_dbt(warehouse, settings, ["build"])
    logger.info("dbt build: %s", dbt_result.summary())
    return {
        "as_of": as_of_date.isoformat(),
        "files": [asdict(f) for f in report.files],
        "absent": report.absent,
        "ignored": report.ignored,
        "dbt": {"counts": dbt_result.counts, "built": dbt_result.built},
    }
