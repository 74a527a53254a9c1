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

import logging
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from csflow.alerts import queue_alert, send_alert_now
from csflow.config import Settings, load_settings
from csflow.dbt import DbtResult, run_dbt
from csflow.ingest import IngestReport, ingest_folder
from csflow.mailers import deliver_outbox
from csflow.outbox import DeliveryIncomplete, DeliveryReport
from csflow.outcomes import OutcomeImport, import_outcomes
from csflow.playbooks import PlayResult, run_playbooks
from csflow.run_context import parse_as_of, write_run_context
from csflow.validation import ValidationReport, build_data_docs, run_validation
from csflow.warehouse import Warehouse, open_warehouse

log = logging.getLogger(__name__)

OUTCOMES_FILE = "outcomes.csv"  # optional, in the landing folder: see csflow/outcomes.py


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
                "%s: %d loaded, %d rejected, %d unknown account",
                f.file, f.rows_loaded, f.rows_rejected, f.rows_unknown_account,
            )
    return report


@task(name="run context", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def run_context_task(warehouse: Warehouse, as_of: date, run_id: str, timezone: str) -> None:
    with warehouse.connected() as engine:
        write_run_context(engine, as_of, run_id, timezone)


@task(name="validate", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def validate_task(warehouse: Warehouse, as_of: date, run_id: str, timezone: str) -> ValidationReport:
    report = run_validation(warehouse, as_of, run_id, timezone=timezone)
    logger = get_run_logger()
    (logger.info if report.gate_open else logger.error)("validation: %s", report.failures_text().splitlines()[0])
    return report


@task(name="data docs", cache_policy=NO_CACHE)
def data_docs_task(report: ValidationReport, out_dir: Path) -> str:
    return str(build_data_docs(report, out_dir))


# Playbooks are safe to retry: the ledger fires each occasion once.
@task(name="playbooks", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def playbooks_task(
    warehouse: Warehouse, settings: Settings, as_of: date, gate_open: bool, customer_email: bool = True
) -> list[PlayResult]:
    with warehouse.connected() as engine:
        return run_playbooks(engine, settings, as_of, gate_open, customer_email=customer_email)


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
    """Outcomes a CRM export dropped in the landing folder; repeating an import changes nothing.

    The file never fails the run: bad rows are listed, and a file that cannot
    be read at all (its header, its encoding) is reported and left for a person.
    """
    logger = get_run_logger()
    try:
        with warehouse.connected() as engine:
            report = import_outcomes(engine, path)
    except (ValueError, sa.exc.DBAPIError) as exc:
        logger.error("%s was not imported: %s", path.name, exc)
        return OutcomeImport(file=str(path), rejects=[(1, f"file not imported: {exc}")])
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


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run summary shown as a Prefect artifact."""
    lines = [f"# csflow run for {summary['as_of']}", ""]
    if summary["files"] or not summary["ingested"]:
        lines += ["## Ingest", ""]
    if not summary["ingested"]:
        lines.append("(skipped: the landing folder was loaded earlier in this backfill)")
    if summary["files"]:
        lines += ["| file | loaded | rejected | unknown account |", "|---|---|---|---|"]
    for f in summary["files"]:
        note = f" ({f['message']})" if f["status"] == "rejected" else ""
        lines.append(f"| {f['file']}{note} | {f['rows_loaded']} | {f['rows_rejected']} | {f['rows_unknown_account']} |")
    if summary.get("outcomes"):
        o = summary["outcomes"]
        lines += ["", f"Outcomes ({OUTCOMES_FILE}): {o['recorded']} recorded, {o['unchanged']} unchanged, {len(o['rejects'])} rejected"]
    lines += ["", f"## dbt build\n\n{', '.join(f'{n} {s}' for s, n in sorted(summary['dbt']['counts'].items()))}", ""]
    lines += [summary["validation_markdown"], "", "## Playbooks", ""]
    if not summary["customer_email"]:
        lines += ["Customer email held: a past date in a backfill.", ""]
    lines += ["| playbook | fired | messages | tasks | held (customer email) |", "|---|---|---|---|---|"]
    for p in summary["playbooks"]:
        held = "; ".join(f"{n}: {why}" for why, n in p["held"].items())
        lines.append(f"| {p['playbook']} | {p['fired']} | {p['messages']} | {p['tasks']} | {held} |")
    sent = summary["delivery_line"]
    lines += ["", f"## Delivery\n\n{sent if summary['sent'] else 'not sent in this run (send=False): queued in ops.outbox'}"]
    lines += ["", "## Stage times (s)", "", " · ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items())]
    return "\n".join(lines)


def firings_table(warehouse: Warehouse, as_of: date, limit: int = 1000) -> list[dict[str, Any]]:
    """The firings recorded for as_of, for the run's table artifact."""
    with warehouse.connected() as engine, engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select action_id, playbook, account_id, channel, status, coalesce(detail, '') as detail "
                "from ops.playbook_actions where as_of_date = :as_of order by playbook, action_id limit :n"
            ),
            {"as_of": as_of, "n": limit},
        ).mappings()
        return [dict(r) for r in rows]


def alert_on_failure(flow: Any, run: Any, state: Any) -> None:
    """Flow hook: a failed or crashed run emails the data team what failed."""
    settings = load_settings()
    params = dict(getattr(run, "parameters", None) or {})
    text = (
        f"Flow {flow.name}, run {run.name} ({run.id}) ended {state.type.value}.\n"
        f"Parameters: {params}\n\n{state.message or ''}\n\n"
        "Look at the run's logs in Prefect; `csflow doctor` checks the set-up. "
        "Rerunning is safe: nothing is fired or sent twice."
    )
    how = send_alert_now(settings, f"run-failed:{run.id}", f"{flow.name} failed ({run.name})", text)
    log.info("data team alerted about run %s (%s)", run.id, how)


@flow(name="run_pipeline", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def run_pipeline(
    as_of: date | None = None,
    landing_dir: str | None = None,
    send: bool = True,
    customer_email: bool = True,
    ingest: bool = True,
) -> dict[str, Any]:
    """One logical date: ingest, build, validate, act and deliver.

    send=False queues messages without delivering them; customer_email=False
    holds customer-facing plays (a backfill of past dates); ingest=False skips
    loading (a backfill loads the landing folder once, for its first date).
    """
    settings = load_settings()
    as_of_date = parse_as_of(as_of, settings)
    landing = Path(landing_dir) if landing_dir else settings.landing_dir
    run_id = str(flow_run.get_id() or "local")
    logger = get_run_logger()
    logger.info("run_pipeline as_of=%s landing=%s send=%s customer_email=%s", as_of_date, landing, send, customer_email)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    with open_warehouse(settings) as warehouse, warehouse.exclusive(f"run {as_of_date}", settings.run_lock_wait_seconds):
        report = ingest_task(warehouse, landing) if ingest else IngestReport()
        outcomes = import_outcomes_task(warehouse, landing / OUTCOMES_FILE) if (landing / OUTCOMES_FILE).is_file() else None
        run_context_task(warehouse, as_of_date, run_id, settings.timezone)
        lap("ingest")
        # One dbt build; PrefectDbtRunner makes each model a task of this flow.
        dbt_result: DbtResult = run_dbt(warehouse, settings, ["build"])
        logger.info("dbt build: %s", dbt_result.summary())
        lap("dbt_build")
        validation = validate_task(warehouse, as_of_date, run_id, settings.timezone)
        lap("validate")
        # Data Docs are for people, not for the gate: build them alongside the rest.
        docs = data_docs_task.submit(validation, settings.state_dir.resolve() / "data_docs")
        plays = playbooks_task(warehouse, settings, as_of_date, validation.gate_open, customer_email)
        if not validation.gate_open:
            alert_data_team_task(warehouse, settings, as_of_date, run_id, validation.failures_text())
        lap("playbooks")
        delivery = deliver_task(warehouse, settings) if send else DeliveryReport()
        lap("deliver")
        try:
            docs_index = docs.result()
        except Exception as exc:  # docs are a convenience; their failure must not fail the run
            logger.warning("data docs were not built: %s", exc)
            docs_index = None
        firings = firings_table(warehouse, as_of_date)
    summary = {
        "as_of": as_of_date.isoformat(),
        "ingested": ingest,
        "files": [asdict(f) for f in report.files],
        "absent": report.absent,
        "ignored": report.ignored,
        "outcomes": asdict(outcomes) if outcomes else None,
        "dbt": {"counts": dbt_result.counts, "built": dbt_result.built},
        "validation": validation.to_dict(),
        "validation_markdown": validation.summary_markdown(),
        "gate_open": validation.gate_open,
        "data_docs": docs_index,
        "customer_email": customer_email,
        "playbooks": [asdict(p) for p in plays],
        "sent": send,
        "delivery": asdict(delivery),
        "delivery_line": delivery.line(),
        "timings": timings,
    }
    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary), description=f"csflow {as_of_date}")
    if firings:
        create_table_artifact(key="firings", table=firings, description=f"Playbook firings for {as_of_date}")
    if send and delivery.problem():
        # After the summary is published: the run ends Failed, so the failure alert fires.
        raise DeliveryIncomplete(delivery, summary)
    return summary
