"""The nightly pipeline: ingest -> dbt build -> validate -> playbooks -> deliver.

Each step is a task over a plain csflow function. Failing data never triggers
customer email: a closed validation gate holds back customer-facing plays and
alerts the data team instead. A failed run alerts the data team too.

Retries are set where a failure can be transient and a retry repeats no side
effect the ledgers do not guard: ingest replaces by key, the playbook ledger
fires each occasion once, the outbox sends each message at most once. dbt
runs once per run (its own nodes are idempotent, but a rerun costs minutes).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from csflow.alerts import alert_on_failure, queue_alert
from csflow.config import Settings, load_settings
from csflow.dbt import DbtResult, build_and_test
from csflow.doctor import preflight
from csflow.ingest import IngestReport, ingest_folder
from csflow.mailers import deliver_outbox
from csflow.outbox import DeliveryIncomplete, DeliveryReport
from csflow.outcomes import OUTCOMES_FILE, OutcomeImport, import_outcomes_reported
from csflow.playbooks import PlayResult, firings, run_playbooks
from csflow.run_context import parse_as_of, write_run_context
from csflow.summary import RunSummary
from csflow.validation import ValidationReport, build_data_docs, run_validation
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

    with warehouse.connected() as engine:
        report = ingest_folder(engine, landing_dir, progress)
    for f in report.files:
        if f.status == "rejected":
            logger.error("%s rejected: %s", f.file, f.message)
        else:
            logger.info(
                "%s: %d loaded, %d rejected, %d duplicates, %d unknown account",
                f.file, f.rows_loaded, f.rows_rejected, f.rows_duplicate, f.rows_unknown_account,
            )
    return report


@task(name="run context", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def run_context_task(warehouse: Warehouse, as_of: date, run_id: str, timezone: str) -> None:
    with warehouse.connected() as engine:
        write_run_context(engine, as_of, run_id, timezone)


@task(name="validate", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def validate_task(warehouse: Warehouse, as_of: date, run_id: str, timezone: str, dbt: DbtResult) -> ValidationReport:
    report = run_validation(warehouse, as_of, run_id, dbt_tests=dbt.data_tests, timezone=timezone)
    logger = get_run_logger()
    (logger.info if report.gate_open else logger.error)("validation: %s", report.failures_text().splitlines()[0])
    return report


@task(name="data docs", cache_policy=NO_CACHE)
def data_docs_task(report: ValidationReport, out_dir: Path) -> str:
    return str(build_data_docs(report, out_dir))


# Playbooks are safe to retry: the ledger fires each occasion once.
@task(name="playbooks", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def playbooks_task(
    warehouse: Warehouse, settings: Settings, as_of: date, gate_open: bool, past_date: bool = False
) -> list[PlayResult]:
    with warehouse.connected() as engine:
        return run_playbooks(engine, settings, as_of, gate_open, past_date=past_date)


@task(name="alert data team", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def alert_data_team_task(warehouse: Warehouse, settings: Settings, as_of: date, run_id: str, text: str) -> None:
    """A closed gate is news for the data team; the alert is queued once per run."""
    with warehouse.connected() as engine:
        queue_alert(
            engine, settings, f"gate-closed:{as_of}:{run_id}",
            f"validation gate closed for {as_of}: no customer email sent", text,
        )


@task(name="import outcomes", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def import_outcomes_task(warehouse: Warehouse, path: Path) -> OutcomeImport:
    """Outcomes a CRM export dropped in the landing folder; the file never fails the run."""
    with warehouse.connected() as engine:
        report = import_outcomes_reported(engine, path)
    logger = get_run_logger()
    logger.info("%s: %d outcome(s) recorded, %d unchanged", path.name, report.recorded, report.unchanged)
    for line, reason in report.rejects:
        logger.warning("%s line %d rejected: %s", path.name, line, reason)
    return report


# Delivery is safe to retry (the outbox sends each message at most once), so a
# database hiccup is retried. A provider that stops the sender is not: the
# report says so, the run fails at its end and the next run resumes.
@task(name="deliver", retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def deliver_task(warehouse: Warehouse, settings: Settings) -> DeliveryReport:
    with warehouse.connected() as engine:
        report = deliver_outbox(engine, settings)
    logger = get_run_logger()
    (logger.error if report.problem() else logger.info)("deliver (%s): %s", settings.email_backend, report.line())
    return report


@task(name="firings", cache_policy=NO_CACHE)
def publish_firings_task(warehouse: Warehouse, as_of: date) -> None:
    with warehouse.connected() as engine:
        rows = firings(engine, as_of)
    if rows:
        create_table_artifact(key="firings", table=rows, description=f"Playbook firings for {as_of}")


@flow(name="run_pipeline", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def run_pipeline(
    as_of: date | None = None,
    landing_dir: str | None = None,
    send: bool = True,
    past_date: bool = False,
    ingest: bool = True,
) -> RunSummary:
    """One logical date: ingest, build, validate, act and deliver.

    send=False queues messages without delivering them; past_date=True
    holds every play (a backfill's past dates: nobody is told late); ingest=False skips
    loading (a backfill loads the landing folder once, for its first date).
    """
    settings = load_settings()
    as_of_date = parse_as_of(as_of, settings)
    landing = Path(landing_dir) if landing_dir else settings.landing_dir
    preflight(settings, landing if ingest else None)  # a mistake in the set-up fails before anything loads
    run_id = str(flow_run.get_id() or "local")
    logger = get_run_logger()
    logger.info("run_pipeline as_of=%s landing=%s send=%s past_date=%s", as_of_date, landing, send, past_date)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    with open_warehouse(settings) as warehouse, warehouse.exclusive(f"run {as_of_date}", settings.run_lock_wait_seconds):
        report = ingest_task(warehouse, landing) if ingest else IngestReport()
        outcomes_file = landing / OUTCOMES_FILE
        outcomes = import_outcomes_task(warehouse, outcomes_file) if outcomes_file.is_file() else None
        run_context_task(warehouse, as_of_date, run_id, settings.timezone)
        lap("ingest")
        # Models first (a model that fails to build fails the run), then every
        # data test, whose results join the validation gate.
        dbt_result = build_and_test(warehouse, settings)
        logger.info("dbt build: %s", dbt_result.summary())
        lap("dbt_build")
        validation = validate_task(warehouse, as_of_date, run_id, settings.timezone, dbt_result)
        lap("validate")
        # Data Docs are for people, not for the gate: build them alongside the rest.
        docs = data_docs_task.submit(validation, settings.state_dir.resolve() / "data_docs")
        plays = playbooks_task(warehouse, settings, as_of_date, validation.gate_open, past_date)
        if not validation.gate_open:
            alert_data_team_task(warehouse, settings, as_of_date, run_id, validation.failures_text())
        lap("playbooks")
        delivery = deliver_task(warehouse, settings) if send else DeliveryReport()
        lap("deliver")
        try:
            docs_index: str | None = docs.result()
        except Exception as exc:  # docs are a convenience; their failure must not fail the run
            logger.warning("data docs were not built: %s", exc)
            docs_index = None
        publish_firings_task(warehouse, as_of_date)
    summary = RunSummary(
        as_of=as_of_date, ingested=ingest, ingest=report, outcomes=outcomes, dbt=dbt_result, validation=validation,
        playbooks=plays, past_date=past_date, sent=send, delivery=delivery, timings=timings,
        data_docs=docs_index,
    )
    create_markdown_artifact(key="run-summary", markdown=summary.markdown(), description=f"csflow {as_of_date}")
    if send and delivery.problem():
        # After the summary is published: the run ends Failed, so the failure alert fires.
        raise DeliveryIncomplete(delivery, summary)
    return summary
