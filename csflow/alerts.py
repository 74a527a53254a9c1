"""Alerts to the data team: a closed validation gate, a failed flow run.

An alert goes through the outbox like any message (kind `alert`, queued once
per dedupe key) and is delivered at once, alone: other pending messages wait
for their own run's delivery step. When the warehouse itself is what failed,
the alert is handed straight to the mailer instead, so bad news still leaves.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import sqlalchemy as sa

from csflow.config import Settings
from csflow.outbox import DeliveryReport, Message, queue_messages

log = logging.getLogger(__name__)


def alert_message(settings: Settings, dedupe_key: str, subject: str, text: str) -> Message:
    return Message(
        dedupe_key=dedupe_key,
        kind="alert",
        to_email=settings.data_team_email,
        subject=f"[csflow] {subject}",
        html_body="<pre style='font-family:monospace;white-space:pre-wrap'>" + html.escape(text) + "</pre>",
        text_body=text,
    )


def queue_alert(engine: sa.Engine, settings: Settings, dedupe_key: str, subject: str, text: str) -> bool:
    """Queue an alert once per dedupe_key; True when it was newly queued."""
    with engine.begin() as conn:
        return bool(queue_messages(conn, [alert_message(settings, dedupe_key, subject, text)]))


def send_alert_now(settings: Settings, dedupe_key: str, subject: str, text: str) -> str:
    """Queue and deliver one alert; falls back to the mailer alone when the warehouse is down.

    Returns how it left: "outbox", "direct" or "already sent".
    """
    from csflow.mailers import deliver_outbox, make_mailer
    from csflow.warehouse import open_warehouse

    try:
        with open_warehouse(settings) as warehouse, warehouse.connected() as engine:
            fresh = queue_alert(engine, settings, dedupe_key, subject, text)
            report: DeliveryReport = deliver_outbox(engine, settings, kinds=("alert",))
        log.info("alert %s: %s", dedupe_key, report.line())
        return "outbox" if fresh else "already sent"
    except Exception as exc:  # the warehouse may be what failed: the alert must still leave
        log.warning("outbox unavailable (%s); sending the alert directly", exc)
        message = alert_message(settings, dedupe_key, subject, text)
        message.message_id = 0
        mailer = make_mailer(settings)
        try:
            result = mailer.send(message)
        finally:
            mailer.close()
        if result.outcome != "sent":
            raise RuntimeError(f"could not alert the data team: {result.outcome} {result.detail}") from exc
        return "direct"


def alert_on_failure(flow: Any, run: Any, state: Any) -> None:
    """Prefect flow hook (on_failure, on_crashed): a failed or crashed run emails the data team what failed."""
    from csflow.config import load_settings

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
