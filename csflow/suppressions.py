"""Suppressions: email addresses csflow must not send customer email to.

One row per address in ops.suppressions (address, reason, source, when),
whatever contact record or source the opt-out came from: an unsubscribe link,
the CRM's `is_unsubscribed` flag, a provider's bounce or spam report, or a
person. Playbooks leave suppressed addresses out when they queue email, and
the outbox checks again at send time, so an opt-out that arrives after a
message was queued still stops it (the message ends `skipped`).
"""

from __future__ import annotations

import sqlalchemy as sa

from csflow.addresses import normalized
from csflow.schema import SUPPRESSION_REASONS

# Where a landing file's opt-out came from, in ops.suppressions.source.
CONTACTS_SOURCE = "contacts.is_unsubscribed"


def suppress(conn: sa.Connection, address: str, reason: str, source: str) -> bool:
    """Add an address (first reason wins); True when it was not suppressed before."""
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"suppression reason {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}")
    return bool(
        conn.execute(
            sa.text(
                "insert into ops.suppressions (address, reason, source) values (:a, :r, :s) "
                "on conflict (address) do nothing"
            ),
            {"a": normalized(address), "r": reason, "s": source},
        ).rowcount
    )


def sync_from_contacts(conn: sa.Connection) -> int:
    """Contacts the CRM marks unsubscribed suppress their address, for every record that shares it."""
    return conn.execute(
        sa.text(
            f"""insert into ops.suppressions (address, reason, source)
                select distinct lower(email), 'unsubscribe', '{CONTACTS_SOURCE}'
                from marts.account_contacts
                where is_unsubscribed
                on conflict (address) do nothing"""
        )
    ).rowcount


def suppressed(conn: sa.Connection) -> dict[str, str]:
    """Every suppressed address and its reason."""
    return dict(conn.execute(sa.text("select address, reason from ops.suppressions")).all())
