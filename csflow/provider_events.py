"""What the email provider tells csflow after a send: SendGrid's Event Webhook
(POST /webhooks/sendgrid) and, for installations SendGrid cannot reach, its
suppression lists pulled through the API before a send.

- A bounce (not a temporary block), a drop, a spam report or an unsubscribe
  suppresses the address (ops.suppressions), so the next send skips it.
- Delivered, open and click events are stored against the message they are
  about (ops.message_events), matched by SendGrid's message id; the account
  page's communication history shows them.

Posts are verified with SendGrid's ECDSA signature over the timestamp and the
raw body (the official client's EventWebhook helper); unsigned, badly signed
or stale posts are refused. SendGrid retries a post it got no answer to, so
every event is kept once, by its sg_event_id.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from csflow.addresses import is_address, normalized
from csflow.suppressions import suppress

log = logging.getLogger(__name__)

# A signed post older (or newer) than this is refused: a captured post cannot be replayed later.
MAX_AGE_SECONDS = 600
# Events that stop further customer email to the address, and the suppression reason they give.
SUPPRESSING = {
    "bounce": "bounce",
    "dropped": "bounce",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
STORED = ("processed", "delivered", "deferred", "open", "click", *SUPPRESSING)


class BadSignature(Exception):
    """The post is not from SendGrid (or not anymore): refused with 403."""


def verify_sendgrid_signature(
    public_key: str, signature: str, timestamp: str, body: bytes, now: float | None = None
) -> None:
    """Raise BadSignature unless body was signed by the key's owner within MAX_AGE_SECONDS."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from sendgrid.helpers.eventwebhook import EventWebhook

    if not public_key:
        raise BadSignature("setting sendgrid_webhook_public_key is empty: events are refused until it is set")
    if not signature or not timestamp:
        raise BadSignature(
            "unsigned post: the X-Twilio-Email-Event-Webhook-Signature and -Timestamp headers are required"
        )
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        raise BadSignature("the timestamp header is not a number") from None
    if abs(age) > MAX_AGE_SECONDS:
        raise BadSignature(f"stale post: signed {int(age)} seconds ago (at most {MAX_AGE_SECONDS} accepted)")
    try:
        webhook = EventWebhook(public_key)
        payload = body.decode("utf-8")
        good = webhook.verify_signature(payload, signature, timestamp)
    except (ValueError, UnsupportedAlgorithm, UnicodeDecodeError, binascii.Error, TypeError) as exc:
        raise BadSignature(f"cannot check the signature: {exc.__class__.__name__}") from None
    if not good:
        raise BadSignature("the signature does not match the body")


def _message_id(event: dict[str, Any]) -> str | None:
    """SendGrid's sg_message_id is the X-Message-Id it answered at send, then '.filter...'."""
    value = event.get("sg_message_id")
    return str(value).split(".", 1)[0] if value else None


def record_sendgrid_events(conn: sa.Connection, body: bytes) -> dict[str, int]:
    """Store and act on a verified post's events; counts by what was done."""
    try:
        events = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(events, list):
        raise ValueError("the body is not a list of events")
    counts: dict[str, int] = {}
    rows = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            counts["ignored"] = counts.get("ignored", 0) + 1
            continue
        kind, address = event["event"], normalized(str(event.get("email") or ""))
        reason = SUPPRESSING.get(kind)
        if kind == "bounce" and event.get("type") == "blocked":
            reason = None  # a receiving server's temporary block, not a dead address
        if reason and is_address(address) and suppress(conn, address, reason, f"sendgrid:{kind}"):
            counts["suppressed"] = counts.get("suppressed", 0) + 1
        if kind in STORED:
            try:
                occurred = datetime.fromtimestamp(int(event.get("timestamp") or time.time()), UTC)
            except (ValueError, OverflowError, OSError):
                occurred = datetime.now(UTC)
            rows.append(
                {
                    "pid": _message_id(event),
                    "eid": str(event["sg_event_id"]) if event.get("sg_event_id") else None,
                    "event": kind,
                    "address": address or None,
                    "at": occurred.isoformat(),
                    "detail": {k: event[k] for k in ("reason", "type", "url", "status", "response") if k in event},
                }
            )
    if rows:
        stored = conn.execute(
            sa.text(
                """insert into ops.message_events (message_id, provider_message_id, provider_event_id, event, address, occurred_at, detail)
                   select (select o.message_id from ops.outbox o where o.provider_message_id = x.pid limit 1),
                          x.pid, x.eid, x.event, x.address, x.at, coalesce(x.detail, '{}'::jsonb)
                   from jsonb_to_recordset(cast(:rows as jsonb))
                     as x(pid text, eid text, event text, address text, at timestamptz, detail jsonb)
                   on conflict (provider_event_id) do nothing"""
            ),
            {"rows": json.dumps(rows)},
        ).rowcount
        counts["stored"] = stored
        if stored < len(rows):
            counts["already stored"] = len(rows) - stored
    return counts


def pull_sendgrid_suppressions(
    conn: sa.Connection, client: Any, group_id: int | None, timeout: float, page: int = 500
) -> int:
    """Suppress what SendGrid already knows: the unsubscribe group's addresses and the global unsubscribes.

    `client` is the official SendGridAPIClient. Returns how many addresses were new here.
    """
    found: list[str] = []
    if group_id is not None:
        response = client.client.asm.groups._(group_id).suppressions.get(timeout=timeout)
        found += [str(a) for a in json.loads(response.body or b"[]")]
    offset = 0
    while True:
        response = client.client.suppression.unsubscribes.get(
            query_params={"limit": page, "offset": offset}, timeout=timeout
        )
        batch = json.loads(response.body or b"[]")
        found += [str(item.get("email", "")) for item in batch if isinstance(item, dict)]
        if len(batch) < page:
            break
        offset += page
    added = sum(
        suppress(conn, a, "unsubscribe", "sendgrid:suppression list")
        for a in {normalized(a) for a in found}
        if is_address(a)
    )
    log.info("SendGrid suppressions pulled: %d addresses, %d new", len(found), added)
    return added
