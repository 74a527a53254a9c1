"""Digests: each CSM's daily digest and the weekly leadership KPI report.

Runs after the nightly pipeline (its marts and firings are what the digests
read). Each message is queued once per period (the dedupe key carries the
day, or the ISO week for the report), so a retried or repeated run sends
nothing twice.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from csflow.alerts import alert_on_failure
from csflow.config import Settings, load_settings
from csflow.dbt import run_dbt
from csflow.digests import DigestReport, build_digests
from csflow.mailers import deliver_outbox
from csflow.outbox import DeliveryIncomplete, DeliveryReport
from csflow.run_context import parse_as_of
from csflow.warehouse import Warehouse, open_warehouse


# Queueing is safe to retry: dedupe keys make a second queueing a no-op.
@task(name="build digests", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def build_digests_task(
    warehouse: Warehouse, settings: Settings, as_of: date, csm_digests: bool, kpi_report: bool
) -> DigestReport:
    with warehouse.connected() as engine:
        return build_digests(engine, settings, as_of, include_kpi_report=kpi_report, include_csm_digests=csm_digests)


# Delivery is safe to retry: the outbox sends each message at most once.
@task(name="deliver digests", retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def deliver_digests_task(warehouse: Warehouse, settings: Settings) -> DeliveryReport:
    with warehouse.connected() as engine:
        return deliver_outbox(engine, settings, kinds=("digest", "report"))


@flow(name="send_digests", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def send_digests(
    as_of: date | None = None, csm_digests: bool = True, kpi_report: bool = False, send: bool = True
) -> dict[str, Any]:
    """Queue (and send) the CSM digests and/or the leadership KPI report for as_of."""
    settings = load_settings()
    as_of_date = parse_as_of(as_of, settings)
    logger = get_run_logger()
    with open_warehouse(settings) as warehouse, warehouse.exclusive(f"digests {as_of_date}", settings.run_lock_wait_seconds):
        if kpi_report:
            # The report's effectiveness table includes today's firings and deliveries
            # (the nightly run tested the model; a rebuild only adds rows).
            run_dbt(warehouse, settings, ["run", "--select", "playbook_effectiveness"])
        report = build_digests_task(warehouse, settings, as_of_date, csm_digests, kpi_report)
        logger.info(
            "%d CSM digest(s) (%d CSM(s) had nothing to act on), KPI report %s; %d newly queued",
            report.csm_digests, report.csms_with_nothing, "built" if report.kpi_report else "not asked", report.queued,
        )
        delivery = deliver_digests_task(warehouse, settings) if send else DeliveryReport()
    summary = {
        "as_of": as_of_date.isoformat(),
        **{k: (str(v) if k == "kpi_report_file" and v else v) for k, v in asdict(report).items()},
        "delivery": asdict(delivery),
    }
    create_markdown_artifact(
        key="digests-summary",
        markdown=(
            f"# csflow digests for {as_of_date}\n\n"
            f"- CSM digests: {report.csm_digests} ({report.csms_with_nothing} CSM(s) had nothing to act on)\n"
            f"- KPI report: {report.kpi_report_file or 'not built in this run'}\n"
            f"- newly queued: {report.queued}\n"
            f"- delivery: {delivery.line() if send else 'not sent in this run'}\n"
        ),
        description=f"csflow digests {as_of_date}",
    )
    if send and delivery.problem():
        raise DeliveryIncomplete(delivery, summary)
    return summary
