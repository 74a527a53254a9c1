"""The outbox: messages queued in the warehouse and delivered at most once.

A message moves pending -> sending -> sent | failed, and is never sent twice:

- Claiming marks it `sending` (in its own committed transaction, rows taken
  with FOR UPDATE SKIP LOCKED so several senders can share the queue).
- The mailer is called; then the message is marked `sent` (with the
  provider's message id) or `failed` (permanent error, body kept).
- Transient failures (429, 5xx, connection refused) are retried with
  exponential backoff and jitter; when retries run out the message goes back
  to `pending` for the next run, because it was certainly not accepted.
- If a sender dies between claiming and recording the outcome, nobody knows
  whether the provider accepted the message. Each sender holds an advisory
  lock while it runs; `sending` rows whose sender no longer holds its lock
  become `unknown` and are reported for reconciliation, never resent blindly.

Every attempt is recorded in ops.delivery_attempts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

# Advisory-lock namespace of csflow senders (first key of pg_advisory_lock(int, int)).
SENDER_LOCK_CLASS = 0x0C5F

STATUSES = ("pending", "sending", "sent", "failed", "unknown", "cancelled")

SCHEMA_SQL = """
create schema if not exists ops;
create table if not exists ops.outbox (
  message_id bigserial primary key,
  dedupe_key text not null unique,
  action_id bigint,
  kind text not null,
  playbook text,
  to_email text not null,
  to_name text,
  subject text not null,
  html_body text not null,
  text_body text not null,
  is_customer_facing boolean not null default false,
  unsubscribe_url text,
  inline_images jsonb not null default '[]'::jsonb,
  status text not null default 'pending'
    check (status in ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts integer not null default 0,
  claimed_by integer,
  claimed_at timestamptz,
  next_attempt_at timestamptz,
  provider_message_id text,
  last_error text,
  queued_at timestamptz not null default now(),
  sent_at timestamptz
);
create index if not exists outbox_pending on ops.outbox (message_id) where status = 'pending';
create index if not exists outbox_action on ops.outbox (action_id) where action_id is not null;
create table if not exists ops.delivery_attempts (
  message_id bigint not null references ops.outbox (message_id) on delete cascade,
  attempt integer not null,
  backend text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null default now(),
  outcome text not null,
  status_code integer,
  detail text,
  primary key (message_id, attempt)
);
"""


def ensure_outbox_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA_SQL)


@dataclass
class InlineImage:
    content_id: str  # referenced from the HTML as cid:<content_id>
    filename: str
    mime_type: str
    content_b64: str


@dataclass
class Message:
    """A rendered email, ready for any mailer."""

    dedupe_key: str
    kind: str  # playbook | digest | report | alert
    to_email: str
    subject: str
    html_body: str
    text_body: str
    to_name: str | None = None
    action_id: int | None = None
    playbook: str | None = None
    is_customer_facing: bool = False
    unsubscribe_url: str | None = None
    inline_images: list[InlineImage] = field(default_factory=list)
    message_id: int | None = None  # set once queued


@dataclass
class SendResult:
    """One attempt's outcome, as a mailer reports it."""

    outcome: str  # sent | failed (permanent) | retry (certainly not accepted) | unknown (may be accepted)
    provider_message_id: str | None = None
    status_code: int | None = None
    detail: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait


class Mailer:
    """A delivery backend: one attempt at one message, no retries of its own."""

    name = "mailer"

    def send(self, message: Message) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release connections, write indexes; called once at the end of a run."""


def queue_messages(conn: sa.Connection, messages: list[Message]) -> list[int]:
    """Queue messages in the caller's transaction; a known dedupe_key is a no-op.

    One statement for the whole list. Returns the ids of the messages newly
    queued (and sets message_id on those Message objects).
    """
    if not messages:
        return []
    rows = conn.execute(
        sa.text(
            """insert into ops.outbox (dedupe_key, action_id, kind, playbook, to_email, to_name, subject,
                   html_body, text_body, is_customer_facing, unsubscribe_url, inline_images)
               select x.dedupe_key, x.action_id, x.kind, x.playbook, x.to_email, x.to_name, x.subject,
                   x.html_body, x.text_body, x.is_customer_facing, x.unsubscribe_url,
                   coalesce(x.inline_images, '[]'::jsonb)
               from jsonb_to_recordset(cast(:rows as jsonb)) as x(
                   dedupe_key text, action_id bigint, kind text, playbook text, to_email text, to_name text,
                   subject text, html_body text, text_body text, is_customer_facing boolean,
                   unsubscribe_url text, inline_images jsonb, ord integer)
               order by x.ord
               on conflict (dedupe_key) do nothing
               returning message_id, dedupe_key"""
        ),
        {
            "rows": json.dumps(
                [
                    {
                        "dedupe_key": m.dedupe_key,
                        "action_id": m.action_id,
                        "kind": m.kind,
                        "playbook": m.playbook,
                        "to_email": m.to_email,
                        "to_name": m.to_name,
                        "subject": m.subject,
                        "html_body": m.html_body,
                        "text_body": m.text_body,
                        "is_customer_facing": m.is_customer_facing,
                        "unsubscribe_url": m.unsubscribe_url,
                        "inline_images": [img.__dict__ for img in m.inline_images],
                        "ord": i,
                    }
                    for i, m in enumerate(messages)
                ]
            )
        },
    ).all()
    ids = dict((key, int(mid)) for mid, key in rows)
    for m in messages:
        if m.dedupe_key in ids:
            m.message_id = ids[m.dedupe_key]
    return sorted(ids.values())


def _row_to_message(row: Any) -> Message:
    images = row.inline_images if isinstance(row.inline_images, list) else json.loads(row.inline_images or "[]")
    return Message(
        message_id=row.message_id,
        dedupe_key=row.dedupe_key,
        action_id=row.action_id,
        kind=row.kind,
        playbook=row.playbook,
        to_email=row.to_email,
        to_name=row.to_name,
        subject=row.subject,
        html_body=row.html_body,
        text_body=row.text_body,
        is_customer_facing=row.is_customer_facing,
        unsubscribe_url=row.unsubscribe_url,
        inline_images=[InlineImage(**img) for img in images],
    )


@contextmanager
def sender_session(engine: sa.Engine) -> Iterator[int]:
    """Hold this sender's advisory lock for as long as it may have claims."""
    sender_id = random.randint(1, 2**31 - 1)
    params = {"c": SENDER_LOCK_CLASS, "s": sender_id}
    conn = engine.connect()
    try:
        conn.execute(sa.text("select pg_advisory_lock(:c, :s)"), params)
        conn.commit()
        yield sender_id
    finally:
        # A pooled connection outlives close(), so release the lock by name;
        # a crashed sender's lock goes with its dead session.
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.execute(sa.text("select pg_advisory_unlock(:c, :s)"), params)
        conn.close()


def mark_abandoned_unknown(engine: sa.Engine) -> list[int]:
    """`sending` rows whose sender is gone: the provider may or may not have them."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                """update ops.outbox o
                   set status = 'unknown',
                       last_error = 'sender stopped between claiming and recording the outcome; '
                                    || 'check the provider before resending'
                   where o.status = 'sending'
                     and not exists (
                       select 1 from pg_locks l
                       where l.locktype = 'advisory' and l.granted
                         and l.classid = :c and l.objid = o.claimed_by and l.objsubid = 2)
                   returning o.message_id"""
            ),
            {"c": SENDER_LOCK_CLASS},
        ).scalars().all()
    return [int(r) for r in rows]


def claim_batch(engine: sa.Engine, sender_id: int, limit: int, kinds: tuple[str, ...] | None = None) -> list[Message]:
    """Take up to `limit` due pending messages (of `kinds`, default all) and mark them `sending` (committed)."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                """with due as (
                     select message_id from ops.outbox
                     where status = 'pending' and (next_attempt_at is null or next_attempt_at <= now())
                       and (cast(:kinds as text[]) is null or kind = any(cast(:kinds as text[])))
                     order by message_id
                     limit :limit
                     for update skip locked)
                   update ops.outbox o
                   set status = 'sending', claimed_by = :sender, claimed_at = now()
                   from due where o.message_id = due.message_id
                   returning o.*"""
            ),
            {"limit": limit, "sender": sender_id, "kinds": list(kinds) if kinds else None},
        ).all()
    return sorted((_row_to_message(r) for r in rows), key=lambda m: m.message_id or 0)


def _record_attempt(engine: sa.Engine, message_id: int, backend: str, started: float, result: SendResult) -> int:
    with engine.begin() as conn:
        attempt = conn.execute(
            sa.text(
                """update ops.outbox set attempts = attempts + 1 where message_id = :id returning attempts"""
            ),
            {"id": message_id},
        ).scalar_one()
        conn.execute(
            sa.text(
                """insert into ops.delivery_attempts
                     (message_id, attempt, backend, started_at, outcome, status_code, detail)
                   values (:id, :attempt, :backend, to_timestamp(:started), :outcome, :code, :detail)"""
            ),
            {
                "id": message_id,
                "attempt": attempt,
                "backend": backend,
                "started": started,
                "outcome": result.outcome,
                "code": result.status_code,
                "detail": result.detail[:4000] or None,
            },
        )
    return int(attempt)


def _finish(engine: sa.Engine, message_id: int, status: str, result: SendResult, retry_in: float | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """update ops.outbox set status = :status, provider_message_id = coalesce(:pid, provider_message_id),
                     last_error = :error, claimed_by = null,
                     sent_at = case when :status = 'sent' then now() else sent_at end,
                     next_attempt_at = case when :retry_in is null then null
                                            else now() + make_interval(secs => :retry_in) end
                   where message_id = :id and status = 'sending'"""
            ),
            {
                "status": status,
                "pid": result.provider_message_id,
                "error": None if status == "sent" else (result.detail[:4000] or result.outcome),
                "retry_in": retry_in,
                "id": message_id,
            },
        )


@dataclass
class RetryPolicy:
    attempts: int = 5  # per message per run
    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, never shorter than the provider asked."""
        backoff = random.uniform(0, min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1)))
        return max(backoff, min(retry_after or 0.0, self.max_seconds))


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    requeued: int = 0
    unknown: list[int] = field(default_factory=list)  # newly found abandoned messages
    unknown_now: int = 0  # messages left unknown by this run

    def line(self) -> str:
        parts = [f"{self.sent} sent", f"{self.failed} failed", f"{self.requeued} back to pending"]
        if self.unknown or self.unknown_now:
            parts.append(f"{len(self.unknown) + self.unknown_now} unknown (reconcile: csflow outbox --status unknown)")
        return ", ".join(parts)


def _deliver_one(
    engine: sa.Engine, mailer: Mailer, message: Message, policy: RetryPolicy, sleep: Callable[[float], None]
) -> str:
    """Attempt one claimed message until it is settled; returns its new status."""
    assert message.message_id is not None
    for attempt in range(1, policy.attempts + 1):
        started = time.time()
        try:
            result = mailer.send(message)
        except Exception as exc:  # a mailer bug or an unexpected library error: outcome unknown
            result = SendResult("unknown", detail=f"{exc.__class__.__name__}: {exc}")
        _record_attempt(engine, message.message_id, mailer.name, started, result)
        if result.outcome == "sent":
            _finish(engine, message.message_id, "sent", result)
            return "sent"
        if result.outcome == "failed":
            _finish(engine, message.message_id, "failed", result)
            return "failed"
        if result.outcome == "unknown":
            _finish(engine, message.message_id, "unknown", result)
            return "unknown"
        if attempt < policy.attempts:
            sleep(policy.delay(attempt, result.retry_after))
    # Retries ran out on transient errors: certainly not accepted, so try again next run.
    _finish(engine, message.message_id, "pending", result, retry_in=policy.max_seconds)
    return "pending"


def deliver(
    engine: sa.Engine,
    mailer: Mailer,
    *,
    batch_size: int = 100,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> DeliveryReport:
    """Drain the outbox (only messages of `kinds`, if given) through `mailer`; see the module docstring."""
    ensure_outbox_schema(engine)
    policy = policy or RetryPolicy()
    report = DeliveryReport(unknown=mark_abandoned_unknown(engine))
    if report.unknown:
        log.warning("%d message(s) were left in 'sending' by a stopped sender; marked unknown", len(report.unknown))
    with sender_session(engine) as sender_id, _closing(mailer):
        _drain(engine, mailer, sender_id, report, batch_size, limit, policy, sleep, progress, kinds)
    settle_actions(engine)  # a sender that stops before this is caught up by the next
    return report


def _drain(
    engine: sa.Engine,
    mailer: Mailer,
    sender_id: int,
    report: DeliveryReport,
    batch_size: int,
    limit: int | None,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    progress: Callable[[int], None] | None,
    kinds: tuple[str, ...] | None,
) -> None:
    done = 0
    while limit is None or done < limit:
        batch = claim_batch(engine, sender_id, batch_size if limit is None else min(batch_size, limit - done), kinds)
        if not batch:
            return
        for i, message in enumerate(batch):
            status = _deliver_one(engine, mailer, message, policy, sleep)
            report.sent += status == "sent"
            report.failed += status == "failed"
            report.unknown_now += status == "unknown"
            done += 1
            if progress:
                progress(done)
            if status == "pending":
                # Retries ran out: the provider is down for now. The rest of the
                # batch was never attempted, so it safely goes back to pending.
                report.requeued += 1 + _release([m.message_id for m in batch[i + 1 :]], engine)
                return


def settle_actions(engine: sa.Engine) -> int:
    """Give pending playbook firings the status of their messages.

    A firing is `sent` once any of its messages is sent, and `failed` once all
    of them failed or were cancelled; otherwise it stays `pending`. Idempotent,
    so a sender that died before this step is caught up by the next one.
    """
    with engine.begin() as conn:
        if conn.execute(sa.text("select to_regclass('ops.playbook_actions')")).scalar() is None:
            return 0
        return conn.execute(
            sa.text(
                """with settled as (
                     select o.action_id,
                            bool_or(o.status = 'sent') as any_sent,
                            bool_and(o.status in ('failed', 'cancelled')) as all_failed
                     from ops.playbook_actions a
                     join ops.outbox o on o.action_id = a.action_id
                     where a.status = 'pending'
                     group by o.action_id
                   )
                   update ops.playbook_actions a
                   set status = case when s.any_sent then 'sent' else 'failed' end
                   from settled s
                   where a.action_id = s.action_id and a.status = 'pending' and (s.any_sent or s.all_failed)"""
            )
        ).rowcount


@contextmanager
def _closing(mailer: Mailer) -> Iterator[Mailer]:
    try:
        yield mailer
    finally:
        mailer.close()


def _release(message_ids: list[int | None], engine: sa.Engine) -> int:
    if not message_ids:
        return 0
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "update ops.outbox set status = 'pending', claimed_by = null "
                "where status = 'sending' and message_id = any(:ids)"
            ),
            {"ids": message_ids},
        ).rowcount


def outbox_counts(engine: sa.Engine) -> dict[str, int]:
    ensure_outbox_schema(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, count(*) from ops.outbox group by status")).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def pending_messages(engine: sa.Engine, limit: int = 50) -> list[Message]:
    """What `csflow send --dry-run` would send, without claiming anything."""
    ensure_outbox_schema(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select * from ops.outbox where status = 'pending' order by message_id limit :n"), {"n": limit}
        ).all()
    return [_row_to_message(r) for r in rows]


def resolve_unknown(engine: sa.Engine, message_id: int, status: str) -> None:
    """After checking the provider: mark an unknown message `sent`, or `pending` to send it again."""
    if status not in ("sent", "pending", "cancelled"):
        raise ValueError(f"status: {status!r} is not sent, pending or cancelled")
    with engine.begin() as conn:
        updated = conn.execute(
            sa.text(
                """update ops.outbox set status = :status, last_error = last_error || ' (resolved by hand)',
                     sent_at = case when :status = 'sent' then now() else sent_at end
                   where message_id = :id and status = 'unknown'"""
            ),
            {"status": status, "id": message_id},
        ).rowcount
    if not updated:
        raise ValueError(f"message {message_id} is not in status unknown")
    settle_actions(engine)
