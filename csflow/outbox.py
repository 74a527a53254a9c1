"""The outbox: messages queued in the warehouse and delivered at most once.

A message moves pending -> sending -> sent | failed | skipped, and is never
sent twice. Delivery runs in sending slots (`delivery_concurrency` of them):

- Each slot is one database session holding its own advisory lock. It takes
  one message at a time, and only immediately before the provider call: the
  claim (pending -> sending, FOR UPDATE SKIP LOCKED) commits on the session
  that holds the lock, so a slot whose session was killed cannot claim, and a
  crashed sender leaves at most one `sending` message per slot, the one the
  provider was being asked to take.
- The claim also looks up ops.suppressions: a customer-facing message to a
  suppressed address ends `skipped` with the reason instead of being sent.
- The mailer makes one attempt and says what happened (csflow.mailers):
  sent; failed (refused for good, certainly not sent); retry (certainly not
  sent, transient: backoff with jitter, then pending for the next run); or
  unknown (the request went out and no answer came back).
- A 429 pauses every slot until the provider's reset time. Failures of the
  same kind in a row (a wrong password, an outage) stop the sender after
  `stop_after_failures`; the rest stays pending and the report says why.
- On start, `sending` rows whose slot no longer holds its lock become
  `unknown`: the provider may or may not have them, so they are reported for
  reconciliation, never resent blindly. A slot that finishes a call after its
  session died still records the answer (on a new session), so a message the
  provider took ends `sent` even if another sender marked it unknown meanwhile.

Every attempt is recorded in ops.delivery_attempts.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from csflow.schema import MESSAGE_KINDS, MESSAGE_STATUSES

log = logging.getLogger(__name__)

# Advisory-lock namespace of csflow sending slots (first key of pg_advisory_lock(int, int)).
SENDER_LOCK_CLASS = 0x0C5F

STATUSES = MESSAGE_STATUSES


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
    kind: str  # one of KINDS: playbook | digest | report | alert | signin
    to_email: str
    subject: str
    html_body: str
    text_body: str
    to_name: str | None = None
    action_id: int | None = None
    playbook: str | None = None
    is_customer_facing: bool = False
    unsubscribe_url: str | None = None
    # The sender when not the settings' own (customer email: the company), and who replies reach.
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
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
    # What went wrong, in a few words ("login refused", "HTTP 500", "no answer"):
    # failures of the same kind in a row stop the sender.
    kind: str = ""


class Mailer:
    """A delivery backend: one attempt at one message, no retries of its own."""

    name = "mailer"
    # Sending a message again only rewrites it (files): claims need not be
    # durable on disk before the call, so slots may commit asynchronously.
    idempotent = False
    # Slots beyond this many do not make the backend faster.
    max_concurrency = 128

    def slot(self) -> Mailer:
        """The instance one sending slot uses (its own connection, if the backend keeps one)."""
        return self

    def send(self, message: Message) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError

    def skipped(self, message: Message) -> None:
        """Told of a message the sender skipped (its address is suppressed); most backends ignore it."""

    def close(self) -> None:
        """Release connections, write indexes; called once per instance when sending ends."""


def queue_messages(conn: sa.Connection, messages: list[Message]) -> list[int]:
    """Queue messages in the caller's transaction; a known dedupe_key is a no-op.

    One statement for the whole list. Returns the ids of the messages newly
    queued (and sets message_id on those Message objects).
    """
    if not messages:
        return []
    unknown_kinds = {m.kind for m in messages} - set(KINDS)
    if unknown_kinds:
        raise ValueError(f"message kind {sorted(unknown_kinds)[0]!r} is not one of {', '.join(KINDS)}")
    rows = conn.execute(
        sa.text(
            """insert into ops.outbox (dedupe_key, action_id, kind, playbook, to_email, to_name, subject,
                   html_body, text_body, is_customer_facing, unsubscribe_url, from_email, from_name, reply_to,
                   inline_images)
               select x.dedupe_key, x.action_id, x.kind, x.playbook, x.to_email, x.to_name, x.subject,
                   x.html_body, x.text_body, x.is_customer_facing, x.unsubscribe_url, x.from_email, x.from_name,
                   x.reply_to, coalesce(x.inline_images, '[]'::jsonb)
               from jsonb_to_recordset(cast(:rows as jsonb)) as x(
                   dedupe_key text, action_id bigint, kind text, playbook text, to_email text, to_name text,
                   subject text, html_body text, text_body text, is_customer_facing boolean,
                   unsubscribe_url text, from_email text, from_name text, reply_to text, inline_images jsonb,
                   ord integer)
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
                        "from_email": m.from_email,
                        "from_name": m.from_name,
                        "reply_to": m.reply_to,
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


# The columns a Message is made of.
MESSAGE_COLUMNS = (
    "message_id",
    "dedupe_key",
    "action_id",
    "kind",
    "playbook",
    "to_email",
    "to_name",
    "subject",
    "html_body",
    "text_body",
    "is_customer_facing",
    "unsubscribe_url",
    "from_email",
    "from_name",
    "reply_to",
    "inline_images",
)


def _row_to_message(row: Mapping[str, Any]) -> Message:
    images = row["inline_images"]
    images = images if isinstance(images, list) else json.loads(images or "[]")
    return Message(
        **{c: row[c] for c in MESSAGE_COLUMNS if c != "inline_images"},
        inline_images=[InlineImage(**img) for img in images],
    )


# --------------------------------------------------------------------------
# Sending slots


class SlotLost(Exception):
    """The slot's database session (and with it its lock) is gone."""


# Prepared once per slot session, with one generic plan (the ordered index walk
# over pending messages): claims and finishes are the whole database cost of
# sending, so neither is parsed or planned again.
_CLAIM = f"""
with next as (
  select o.message_id, s.reason
  from ops.outbox o
  left join ops.suppressions s on o.is_customer_facing and s.address = lower(o.to_email)
  where o.status = 'pending' and {{which}}
    and o.kind = any($2)
    and not (o.is_customer_facing and $3)
  order by o.message_id
  limit $5
  for update of o skip locked
)
update ops.outbox o
set status = case when next.reason is null then 'sending' else 'skipped' end,
    last_error = case when next.reason is null then o.last_error
                      else 'suppressed (' || next.reason || '): not sent' end,
    claimed_by = case when next.reason is null then $1 end,
    claimed_idempotent = $6,
    claimed_at = now()
from next
where o.message_id = next.message_id
returning {", ".join("o." + c for c in MESSAGE_COLUMNS)}, o.status
"""
# Parameters: slot, kinds, hold customer email, message id (one) or lower bound (next), how many, idempotent.
_CLAIM_TYPES = "(integer, text[], boolean, bigint, integer, boolean)"
_PREPARE = (
    # The next due messages above $4 (claims go in id order, so a slot starts above its last one).
    f"prepare csflow_claim_next {_CLAIM_TYPES} as "
    + _CLAIM.format(which="o.message_id > $4 and (o.next_attempt_at is null or o.next_attempt_at <= now())"),
    # One message again, after a backoff (due or not).
    f"prepare csflow_claim_one {_CLAIM_TYPES} as " + _CLAIM.format(which="o.message_id = $4"),
)
KINDS = MESSAGE_KINDS

# Attempts' outcomes, one row each: the messages' new status and an ops.delivery_attempts row.
_FINISH_SQL = """
with given as (
  select * from jsonb_to_recordset(cast(%(rows)s as jsonb)) as x(
    id bigint, status text, pid text, error text, retry_in float8, started float8, outcome text, code integer,
    detail text)
),
done as (
  update ops.outbox o
  set status = g.status,
      attempts = o.attempts + 1,
      provider_message_id = coalesce(g.pid, o.provider_message_id),
      last_error = g.error,
      claimed_by = null,
      sent_at = case when g.status = 'sent' then now() else o.sent_at end,
      next_attempt_at = case when g.retry_in is null then null else now() + make_interval(secs => g.retry_in) end
  from given g
  where o.message_id = g.id and o.claimed_by = %(slot)s and o.status in ('sending', 'unknown')
  returning o.message_id, o.attempts
)
insert into ops.delivery_attempts (message_id, attempt, backend, started_at, outcome, status_code, detail)
select d.message_id, d.attempts, %(backend)s, to_timestamp(g.started), g.outcome, g.code, g.detail
from done d join given g on g.id = d.message_id
returning message_id
"""
_PREPARE += (
    "prepare csflow_finish (jsonb, integer, text) as "
    + _FINISH_SQL.replace("%(rows)s", "$1").replace("%(slot)s", "$2").replace("%(backend)s", "$3"),
)


@dataclass
class Attempt:
    """One provider call's result, as a slot records it."""

    message_id: int
    started: float  # Unix time the call began
    result: SendResult
    status: str  # the message's new status
    retry_in: float | None = None  # when it goes back to pending: seconds until it is due

    def row(self) -> dict[str, Any]:
        r = self.result
        return {
            "id": self.message_id,
            "status": self.status,
            "pid": r.provider_message_id,
            "error": None if self.status == "sent" else (r.detail[:4000] or r.outcome),
            "retry_in": self.retry_in,
            "started": self.started,
            "outcome": r.outcome,
            "code": r.status_code,
            "detail": r.detail[:4000] or None,
        }


class SendingSlot:
    """One database session holding its own advisory lock; claims messages only just before sending them.

    Works on the driver's connection directly: per message it costs a claim
    and a finish, both prepared. A slot for a backend where sending again is
    harmless (files: the same file is rewritten) claims a batch at a time, and
    its claims go back to pending after a crash instead of becoming unknown.
    """

    def __init__(self, engine: sa.Engine, idempotent: bool = False):
        self.engine = engine
        self.id = random.randint(1, 2**31 - 1)
        self.idempotent = idempotent
        self.after = 0  # messages are claimed in id order: later claims start above the last
        self.proxy = engine.raw_connection()
        self.raw = self.proxy.dbapi_connection
        self.raw.autocommit = True
        self._run("select pg_advisory_lock(%s, %s)", (SENDER_LOCK_CLASS, self.id))
        self._run("set plan_cache_mode = force_generic_plan")
        for statement in _PREPARE:
            self._run(statement)
        if idempotent:
            # A claim lost in a database crash only means a file written again.
            self._run("set synchronous_commit = off")

    def _run(self, sql: str, params: tuple | dict | None = None) -> list[dict[str, Any]]:
        try:
            with self.raw.cursor() as cursor:
                cursor.execute(sql, params)
                if not cursor.description:
                    return []
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except self.engine.dialect.dbapi.Error as exc:
            if self.raw.closed:
                raise SlotLost(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
            with self.raw.cursor() as cursor:
                cursor.execute("rollback")  # leave no transaction block open behind a failed statement
            raise

    def claim(
        self, kinds: tuple[str, ...] | None, hold_customer: bool, limit: int = 1, only: int | None = None
    ) -> list[tuple[Message, str]]:
        """The next due pending messages and their new status: `sending`, or `skipped` when the address is suppressed."""
        rows = self._run(
            f"execute {'csflow_claim_one' if only else 'csflow_claim_next'} (%s, %s, %s, %s, %s, %s)",
            (self.id, list(kinds or KINDS), hold_customer, only or self.after, limit, self.idempotent),
        )
        if rows and only is None:
            self.after = max(r["message_id"] for r in rows)
        return [(_row_to_message(r), r["status"]) for r in sorted(rows, key=lambda r: r["message_id"])]

    def finish(self, backend: str, attempts: list[Attempt]) -> None:
        """Record the attempts and the messages' new status (only those this slot still holds).

        When the session died during the calls, the answers are still recorded
        on a new one (a provider that took a message must not leave it
        unknown), and SlotLost then stops the slot.
        """
        rows = json.dumps([a.row() for a in attempts])
        try:
            # Not waiting for the disk here: should the database itself crash before
            # it flushes, the message is found `sending` and becomes unknown, never resent.
            self._run(
                "begin; set local synchronous_commit = off; execute csflow_finish (%s, %s, %s); commit",
                (rows, self.id, backend),
            )
        except SlotLost:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(_FINISH_SQL, {"rows": rows, "slot": self.id, "backend": backend})
            raise

    def close(self) -> None:
        """Give the lock back and the connection to the pool as it was found."""
        try:
            if not self.raw.closed:
                self._run("select pg_advisory_unlock(%s, %s)", (SENDER_LOCK_CLASS, self.id))
                self._run("deallocate all; reset synchronous_commit; reset plan_cache_mode")
                self.raw.autocommit = False
        except (SlotLost, self.engine.dialect.dbapi.Error):
            self.proxy.invalidate()
        self.proxy.close()


def mark_abandoned(engine: sa.Engine) -> list[int]:
    """`sending` rows whose slot is gone; returns the ones that became unknown.

    The provider may or may not have such a message, so it is `unknown`:
    reported for reconciliation, never resent blindly. A claim made for a
    backend where sending again is harmless (files) simply goes back to pending.
    """
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                """update ops.outbox o
                   set status = case when o.claimed_idempotent then 'pending' else 'unknown' end,
                       claimed_by = case when o.claimed_idempotent then null else o.claimed_by end,
                       last_error = case when o.claimed_idempotent then o.last_error
                                    else 'sender stopped between claiming and recording the outcome; '
                                         || 'check the provider before resending' end
                   where o.status = 'sending'
                     and not exists (
                       select 1 from pg_locks l
                       where l.locktype = 'advisory' and l.granted
                         and l.classid = :c and l.objid = o.claimed_by and l.objsubid = 2)
                   returning o.message_id, o.status"""
            ),
            {"c": SENDER_LOCK_CLASS},
        ).all()
    return [int(r.message_id) for r in rows if r.status == "unknown"]


# --------------------------------------------------------------------------
# Delivering


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
    skipped: int = 0  # suppressed addresses, found at send time
    waiting: int = 0  # still pending when the run ended (for the next run)
    unknown: list[int] = field(default_factory=list)  # abandoned by a stopped sender, found at start
    unknown_now: int = 0  # messages left unknown by this run
    held: int = 0  # customer messages not sent because customer email is refused (held_reason)
    held_reason: str = ""
    stopped: str = ""  # why the sender stopped before the outbox was drained

    @property
    def unknown_total(self) -> int:
        return len(self.unknown) + self.unknown_now

    def line(self) -> str:
        parts = [f"{self.sent} sent", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (suppressed)")
        if self.waiting:
            parts.append(f"{self.waiting} waiting")
        if self.unknown_total:
            parts.append(f"{self.unknown_total} unknown (reconcile: csflow outbox --status unknown)")
        if self.held:
            parts.append(f"{self.held} customer message(s) held: {self.held_reason}")
        return ", ".join(parts)

    def problem(self) -> str | None:
        """One line when delivery needs a person: messages left waiting, failed, or unknown."""
        issues = []
        if self.stopped:
            issues.append(f"stopped early: {self.stopped}; the rest stays pending for the next run")
        if self.held:
            issues.append(f"{self.held} customer message(s) held: {self.held_reason}")
        if self.failed:
            issues.append(f"{self.failed} message(s) failed (csflow outbox --status failed)")
        if self.unknown_total:
            issues.append(f"{self.unknown_total} message(s) unknown (csflow outbox --status unknown)")
        return "delivery incomplete: " + "; ".join(issues) if issues else None


class DeliveryIncomplete(RuntimeError):
    """Delivery left messages waiting, failed or unknown; the run still published its summary."""

    def __init__(self, report: DeliveryReport, summary: dict[str, Any] | None = None):
        super().__init__(report.problem() or "delivery incomplete")
        self.report = report
        self.summary = summary


class _Throttle:
    """Pauses every slot until the provider's rate limit resets."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self, sleep: Callable[[float], None]) -> None:
        remaining = self._until - time.monotonic()
        if remaining > 0:
            sleep(remaining)


@dataclass
class _Run:
    """What the slots of one deliver() share."""

    engine: sa.Engine
    mailer: Mailer
    report: DeliveryReport
    policy: RetryPolicy
    sleep: Callable[[float], None]
    kinds: tuple[str, ...] | None
    hold_customer: bool
    stop_after_failures: int
    remaining: int | None  # messages still to take (limit), None for all
    progress: Callable[[int], None] | None
    throttle: _Throttle = field(default_factory=_Throttle)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    streak_kind: str = ""
    streak: int = 0

    def take(self, wanted: int) -> int:
        """How many messages a slot may claim now (0: stop)."""
        with self.lock:
            if self.stop.is_set():
                return 0
            if self.remaining is None:
                return wanted
            granted = min(wanted, self.remaining)
            self.remaining -= granted
            return granted

    def give_back(self, unused: int) -> None:
        with self.lock:
            if self.remaining is not None:
                self.remaining += unused

    def halt(self, reason: str) -> None:
        with self.lock:
            if not self.report.stopped:
                self.report.stopped = reason
        self.stop.set()

    def count(self, status: str) -> None:
        with self.lock:
            r = self.report
            if status in ("sent", "failed", "skipped"):
                setattr(r, status, getattr(r, status) + 1)
            elif status == "unknown":
                r.unknown_now += 1
            self.done += 1
            done = self.done
        if self.progress:
            self.progress(done)

    def observe(self, result: SendResult) -> None:
        """Failures of the same kind in a row stop the sender; a 429 is flow control, not a failure."""
        if result.outcome == "sent":
            with self.lock:
                self.streak_kind, self.streak = "", 0
            return
        if result.status_code == 429:
            return
        kind = result.kind or result.outcome
        with self.lock:
            self.streak = self.streak + 1 if kind == self.streak_kind else 1
            self.streak_kind = kind
            reached = self.streak >= self.stop_after_failures
        if reached:
            self.halt(f"{self.stop_after_failures} failures in a row ({kind}): {result.detail[:300]}")


def deliver(
    engine: sa.Engine,
    mailer: Mailer,
    *,
    concurrency: int = 1,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
    kinds: tuple[str, ...] | None = None,
    stop_after_failures: int = 5,
    hold_customer: str | None = None,
) -> DeliveryReport:
    """Drain the outbox (only messages of `kinds`, if given) through `mailer`; see the module docstring.

    hold_customer: a reason customer-facing messages may not be sent now (they
    stay pending and are counted as held). The engine's pool must allow
    `concurrency` + 1 connections.
    """
    with engine.begin() as conn:
        conn.execute(sa.text("analyze ops.outbox"))  # fresh statistics for the slots' one generic plan
    report = DeliveryReport(unknown=mark_abandoned(engine))
    if report.unknown:
        log.warning("%d message(s) were left in 'sending' by a stopped sender; marked unknown", len(report.unknown))
    run = _Run(
        engine,
        mailer,
        report,
        policy or RetryPolicy(),
        sleep,
        kinds,
        bool(hold_customer),
        stop_after_failures,
        limit,
        progress,
    )
    concurrency = min(concurrency, mailer.max_concurrency)
    try:
        if concurrency == 1:
            _slot(run)
        else:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="csflow-send") as pool:
                for future in [pool.submit(_slot, run) for _ in range(concurrency)]:
                    future.result()
    except BaseException:
        run.stop.set()  # e.g. Ctrl-C: slots finish their current call and stop
        raise
    finally:
        mailer.close()
    report.waiting, held = _count_waiting(engine, kinds)
    if hold_customer and held:
        report.held, report.held_reason = held, hold_customer
    settle_actions(engine)  # a sender that stops before this is caught up by the next
    return report


# Messages a slot claims at once for an idempotent backend (files).
IDEMPOTENT_BATCH = 50


def _slot(run: _Run) -> None:
    mailer = run.mailer.slot()
    slot: SendingSlot | None = None
    try:
        slot = SendingSlot(run.engine, idempotent=mailer.idempotent)
        batch = IDEMPOTENT_BATCH if mailer.idempotent else 1
        while wanted := run.take(batch):
            claimed = slot.claim(run.kinds, run.hold_customer, wanted)
            run.give_back(wanted - len(claimed))
            if not claimed:
                return
            attempts: list[Attempt] = []
            for message, status in claimed:
                if status == "skipped":
                    mailer.skipped(message)
                    run.count("skipped")
                elif mailer.idempotent:  # sent again harmlessly, so never retried in place: one finish per batch
                    attempts.append(_attempt_once(run, mailer, message))
                else:
                    run.count(_deliver_one(run, slot, mailer, message))
            if attempts:
                slot.finish(mailer.name, attempts)
                for a in attempts:
                    run.count(a.status)
    except SlotLost as exc:
        log.warning("a sending slot lost its database session (%s); it stops, the others go on", exc)
    finally:
        if slot is not None:
            slot.close()
        if mailer is not run.mailer:
            mailer.close()


def _call(run: _Run, mailer: Mailer, message: Message) -> tuple[float, SendResult]:
    """One provider call, after any rate-limit pause; (when it started, what came of it)."""
    run.throttle.wait(run.sleep)
    started = time.time()
    try:
        result = mailer.send(message)
    except Exception as exc:  # a mailer bug or a library error nobody classified: the provider may have it
        log.exception("mailer %s raised while sending message %s", mailer.name, message.message_id)
        result = SendResult("unknown", detail=f"{exc.__class__.__name__}: {exc}", kind="unexpected error")
    run.observe(result)
    return started, result


def _attempt_once(run: _Run, mailer: Mailer, message: Message) -> Attempt:
    assert message.message_id is not None
    started, result = _call(run, mailer, message)
    if result.outcome == "retry":
        run.halt(f"retries ran out ({result.kind or result.detail[:200]})")
        return Attempt(message.message_id, started, result, "pending", run.policy.max_seconds)
    return Attempt(message.message_id, started, result, result.outcome)


def _deliver_one(run: _Run, slot: SendingSlot, mailer: Mailer, message: Message) -> str:
    """Attempt one claimed message until it is settled or goes back to pending; returns its new status."""
    assert message.message_id is not None
    policy = run.policy
    for attempt in range(1, policy.attempts + 1):
        started, result = _call(run, mailer, message)
        if result.outcome != "retry":
            slot.finish(mailer.name, [Attempt(message.message_id, started, result, result.outcome)])
            return result.outcome
        if attempt == policy.attempts or run.stop.is_set():
            break
        delay = policy.delay(attempt, result.retry_after)
        if result.status_code == 429:
            run.throttle.pause(delay)
        # Pending while we wait, so a crash now cannot leave it unknown: it was certainly not sent.
        slot.finish(mailer.name, [Attempt(message.message_id, started, result, "pending", delay)])
        run.sleep(delay)
        if run.stop.is_set() or not slot.claim(run.kinds, run.hold_customer, only=message.message_id):
            return "pending"  # left for a later run (or taken by another sender meanwhile)
    # Retries ran out on transient errors: certainly not accepted, so try again next run.
    slot.finish(mailer.name, [Attempt(message.message_id, started, result, "pending", policy.max_seconds)])
    if not run.stop.is_set():
        run.halt(f"retries ran out ({result.kind or result.detail[:200]})")
    return "pending"


def _count_waiting(engine: sa.Engine, kinds: tuple[str, ...] | None) -> tuple[int, int]:
    """Pending messages (of kinds) left after a run: all, and the customer-facing ones."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select count(*), count(*) filter (where is_customer_facing) from ops.outbox "
                "where status = 'pending' and (cast(:kinds as text[]) is null or kind = any(cast(:kinds as text[])))"
            ),
            {"kinds": list(kinds) if kinds else None},
        ).one()
    return int(row[0]), int(row[1])


def settle_actions(engine: sa.Engine) -> int:
    """Give pending playbook firings the status of their messages.

    A firing is `sent` once any of its messages is sent, `skipped` when every
    one was skipped (suppressed at send time), and `failed` once none can be
    sent any more; otherwise it stays `pending`. Idempotent, so a sender that
    died before this step is caught up by the next one.
    """
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                """with settled as (
                     select o.action_id,
                            bool_or(o.status = 'sent') as any_sent,
                            bool_and(o.status = 'skipped') as all_skipped,
                            bool_and(o.status in ('failed', 'cancelled', 'skipped')) as none_left,
                            min(o.last_error) filter (where o.status = 'skipped') as skip_reason
                     from ops.playbook_actions a
                     join ops.outbox o on o.action_id = a.action_id
                     where a.status = 'pending'
                     group by o.action_id
                   )
                   update ops.playbook_actions a
                   set status = case when s.any_sent then 'sent' when s.all_skipped then 'skipped' else 'failed' end,
                       detail = case when s.all_skipped then coalesce(a.detail, s.skip_reason) else a.detail end
                   from settled s
                   where a.action_id = s.action_id and a.status = 'pending' and (s.any_sent or s.none_left)"""
            )
        ).rowcount


def outbox_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, count(*) from ops.outbox group by status")).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def pending_messages(engine: sa.Engine, limit: int = 50) -> list[Message]:
    """What `csflow send --dry-run` would send, without claiming anything."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select * from ops.outbox where status = 'pending' order by message_id limit :n"), {"n": limit}
        ).all()
    return [_row_to_message(r._mapping) for r in rows]


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


def requeue_failed(engine: sa.Engine) -> int:
    """After fixing what made them fail (a key, a password): send failed messages again.

    Their firings go back to pending too, to take the status of the new attempt.
    """
    with engine.begin() as conn:
        actions = (
            conn.execute(
                sa.text(
                    """update ops.outbox set status = 'pending', next_attempt_at = null,
                     last_error = last_error || ' (requeued by hand)'
                   where status = 'failed'
                   returning action_id"""
                )
            )
            .scalars()
            .all()
        )
        conn.execute(
            sa.text(
                "update ops.playbook_actions set status = 'pending' where status = 'failed' and action_id = any(:ids)"
            ),
            {"ids": [a for a in actions if a is not None]},
        )
    return len(actions)
