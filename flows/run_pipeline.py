"""The nightly pipeline: ingest -> dbt build -> validate -> playbooks -> deliver.

Each step is a task over a plain csflow function. Failing data never triggers
customer email: a closed validation gate holds back customer-facing plays and
queues an alert to the data team instead.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from csflow.config import Settings, load_settings
from csflow.dbt import DbtResult, run_dbt
from csflow.ingest import IngestReport, ingest_folder
from csflow.mailers import make_mailer
from csflow.outbox import DeliveryReport, Message, deliver, ensure_outbox_schema, queue_messages
from csflow.playbooks import PlayResult, run_playbooks
from csflow.run_context import parse_as_of, write_run_context
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


@task(name="validate", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def validate_task(warehouse: Warehouse, as_of: date, run_id: str) -> ValidationReport:
    report = run_validation(warehouse, as_of, run_id)
    logger = get_run_logger()
    (logger.info if report.gate_open else logger.error)("validation: %s", report.failures_text().splitlines()[0])
    return report


@task(name="data docs", cache_policy=NO_CACHE)
def data_docs_task(report: ValidationReport, out_dir: Path) -> str:
    return str(build_data_docs(report, out_dir))


# Playbooks are safe to retry: the ledger fires each occasion once.
@task(name="playbooks", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def playbooks_task(warehouse: Warehouse, settings: Settings, as_of: date, gate_open: bool) -> list[PlayResult]:
    engine = warehouse.engine()
    try:
        return run_playbooks(engine, settings, as_of, gate_open)
    finally:
        engine.dispose()


@task(name="alert data team", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def alert_data_team_task(warehouse: Warehouse, settings: Settings, as_of: date, run_id: str, text: str) -> None:
    """A closed gate is news for the data team; the message is queued once per run."""
    engine = warehouse.engine()
    try:
        ensure_outbox_schema(engine)
        with engine.begin() as conn:
            queue_messages(
                conn,
                [
                    Message(
                        dedupe_key=f"gate-closed:{as_of}:{run_id}",
                        kind="alert",
                        to_email=settings.data_team_email,
                        subject=f"[csflow] validation gate closed for {as_of}: no customer email sent",
                        html_body="<pre style='font-family:monospace'>" + _escape(text) + "</pre>",
                        text_body=text,
                    )
                ],
            )
    finally:
        engine.dispose()


# Delivery is safe to retry: the outbox sends each message at most once.
@task(name="deliver", retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def deliver_task(warehouse: Warehouse, settings: Settings) -> DeliveryReport:
    engine = warehouse.engine()
    try:
        report = deliver(engine, make_mailer(settings))
    finally:
        engine.dispose()
    get_run_logger().info("deliver (%s): %s", settings.email_backend, report.line())
    return report


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run summary shown as a Prefect artifact."""
    lines = [f"# csflow run for {summary['as_of']}", "", "## Ingest", "", "| file | loaded | rejected | unknown account |", "|---|---|---|---|"]
    for f in summary["files"]:
        note = f" ({f['message']})" if f["status"] == "rejected" else ""
        lines.append(f"| {f['file']}{note} | {f['rows_loaded']} | {f['rows_rejected']} | {f['rows_unknown_account']} |")
    lines += ["", f"## dbt build\n\n{', '.join(f'{n} {s}' for s, n in sorted(summary['dbt']['counts'].items()))}", ""]
    lines += [summary["validation_markdown"], "", "## Playbooks", "", "| playbook | fired | messages | tasks | held by gate |", "|---|---|---|---|---|"]
    for p in summary["playbooks"]:
        lines.append(f"| {p['playbook']} | {p['fired']} | {p['messages']} | {p['tasks']} | {p['blocked_by_gate']} |")
    d = summary["delivery"]
    lines += ["", f"## Delivery\n\n{d['sent']} sent, {d['failed']} failed, {len(d['unknown']) + d['unknown_now']} unknown"]
    return "\n".join(lines)


@flow(name="run_pipeline", log_prints=False)
def run_pipeline(as_of: date | None = None, landing_dir: str | None = None, send: bool = True) -> dict[str, Any]:
    """One logical date: ingest, build, validate, act and deliver.

    send=False queues messages without delivering them (e.g. for past dates).
    """
    settings = load_settings()
    as_of_date = parse_as_of(as_of, settings)
    landing = Path(landing_dir) if landing_dir else settings.landing_dir
    run_id = str(flow_run.get_id() or "local")
    logger = get_run_logger()
    logger.info("run_pipeline as_of=%s landing=%s", as_of_date, landing)
    with open_warehouse(settings) as warehouse:
        report = ingest_task(warehouse, landing)
        run_context_task(warehouse, as_of_date, run_id, settings.timezone)
        # One dbt build; PrefectDbtRunner makes each node a task of this flow.
        dbt_result: DbtResult = run_dbt(warehouse, settings, ["build"])
        logger.info("dbt build: %s", dbt_result.summary())
        validation = validate_task(warehouse, as_of_date, run_id)
        # Data Docs are for people, not for the gate: build them alongside the rest.
        docs = data_docs_task.submit(validation, settings.state_dir.resolve() / "data_docs")
        plays = playbooks_task(warehouse, settings, as_of_date, validation.gate_open)
        if not validation.gate_open:
            alert_data_team_task(warehouse, settings, as_of_date, run_id, validation.failures_text())
        delivery = deliver_task(warehouse, settings) if send else DeliveryReport()
        try:
            docs_index = docs.result()
        except Exception as exc:  # docs are a convenience; their failure must not fail the run
            logger.warning("data docs were not built: %s", exc)
            docs_index = None
    summary = {
        "as_of": as_of_date.isoformat(),
        "files": [asdict(f) for f in report.files],
        "absent": report.absent,
        "ignored": report.ignored,
        "dbt": {"counts": dbt_result.counts, "built": dbt_result.built},
        "validation": validation.to_dict(),
        "validation_markdown": validation.summary_markdown(),
        "gate_open": validation.gate_open,
        "data_docs": docs_index,
        "playbooks": [asdict(p) for p in plays],
        "delivery": asdict(delivery),
    }
    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary), description=f"csflow {as_of_date}")
    return summary
