"""The CSM workspace's logic: who may see what, and every change a CSM, a team
lead or a link in an email can make. Plain functions over marts and ops; the
web layer (csflow.web) only checks who is asking, calls them and renders.

Who sees what:
- a CSM (the owner_email of some account): their own accounts, tasks and renewals;
- a team lead (setting team_leads): everything, and reassigns tasks;
- leadership (setting leadership): the KPIs and every account page, read only.
Anything else is not found, whatever id is typed. Every change goes to
ops.audit_log with who and when.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from csflow.addresses import is_address, normalized
from csflow.audit import audit
from csflow.churn import account_risk, latest_model
from csflow.config import Settings
from csflow.links import SURVEY_SCORES, SurveyAnswer
from csflow.outcomes import set_outcome
from csflow.suppressions import suppress

SIGNIN_MINUTES = 15
# Sign-in requests allowed per address and per client in SIGNIN_MINUTES.
SIGNIN_PER_ADDRESS, SIGNIN_PER_CLIENT = 5, 20
HISTORY_DAYS = 90
MOVED_DAYS = 30
COMPONENTS = (
    ("usage_trend_score", "health_weight_usage_trend"),
    ("adoption_breadth_score", "health_weight_adoption_breadth"),
    ("nps_score", "health_weight_nps"),
    ("support_load_score", "health_weight_support_load"),
    ("payment_history_score", "health_weight_payment_history"),
    ("marketing_engagement_score", "health_weight_marketing_engagement"),
)


class NotAllowed(Exception):
    """Not this user's to see or change; the web layer answers 404."""


class RateLimited(Exception):
    """Too many sign-in requests; try again later."""


@dataclass(frozen=True)
class User:
    address: str
    is_csm: bool
    is_lead: bool
    is_leadership: bool

    @property
    def sees_everything(self) -> bool:
        return self.is_lead or self.is_leadership

    @property
    def has_tasks(self) -> bool:
        return self.is_csm or self.is_lead

    @property
    def reads_kpis(self) -> bool:
        return self.is_lead or self.is_leadership


def find_user(conn: sa.Connection, settings: Settings, address: str) -> User | None:
    """The workspace user behind an address, or None for anyone else."""
    address = normalized(address)
    if not is_address(address):
        return None
    is_csm = conn.execute(
        sa.text("select exists (select 1 from marts.account_directory where owner_email = :a)"), {"a": address}
    ).scalar_one()
    lead = address in {normalized(a) for a in settings.team_leads}
    leadership = address in {normalized(a) for a in settings.leadership}
    return User(address, bool(is_csm), lead, leadership) if (is_csm or lead or leadership) else None


# --------------------------------------------------------------------------
# Sign-in by emailed link


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_signin(conn: sa.Connection, settings: Settings, address: str, client: str) -> str | None:
    """Record a sign-in request; the new single-use token when the address is a user.

    The caller answers the same whether or not a token came back, so nobody
    learns who has an account. RateLimited when the address or the client
    asked too often.
    """
    address = normalized(address)
    since = {"since": datetime.now().astimezone() - timedelta(minutes=SIGNIN_MINUTES)}
    by_address, by_client = conn.execute(
        sa.text(
            "select count(*) filter (where address = :a), count(*) filter (where client = :c) "
            "from ops.signin_attempts where at > :since"
        ),
        {"a": address, "c": client, **since},
    ).one()
    conn.execute(
        sa.text("insert into ops.signin_attempts (address, client) values (:a, :c)"), {"a": address, "c": client}
    )
    if by_address >= SIGNIN_PER_ADDRESS or by_client >= SIGNIN_PER_CLIENT:
        raise RateLimited(f"too many sign-in requests; try again in {SIGNIN_MINUTES} minutes")
    if find_user(conn, settings, address) is None:
        return None
    token = secrets.token_urlsafe(32)
    conn.execute(
        sa.text(
            "insert into ops.signin_links (token_hash, address, expires_at) "
            "values (:h, :a, now() + make_interval(mins => :m))"
        ),
        {"h": _hash(token), "a": address, "m": SIGNIN_MINUTES},
    )
    return token


def use_signin_link(conn: sa.Connection, token: str) -> str | None:
    """The address a sign-in link is for, once: a used or expired link gives None."""
    address = conn.execute(
        sa.text(
            "update ops.signin_links set used_at = now() "
            "where token_hash = :h and used_at is null and expires_at > now() returning address"
        ),
        {"h": _hash(token)},
    ).scalar()
    if address:
        audit(conn, address, "signed in", "user", address)
    return address


# --------------------------------------------------------------------------
# Tasks

_TASKS_SQL = """
select t.task_id, t.account_id, a.account_name, t.title, t.due_date, t.status, t.snoozed_until,
       t.owner_email, t.completed_at, t.completed_by, t.action_id, p.playbook, p.outcome,
       t.status = 'open' and t.due_date < :today as is_overdue
from ops.tasks t
join ops.playbook_actions p using (action_id)
left join marts.account_directory a on a.account_id = t.account_id
where (:all or lower(t.owner_email) = :me) {extra}
order by t.due_date, a.account_name, t.task_id
"""


def open_tasks(conn: sa.Connection, user: User, today: date) -> tuple[list[dict[str, Any]], int]:
    """The user's open tasks due now (overdue first), and how many are snoozed past today."""
    params = {"today": today, "all": user.is_lead, "me": user.address}
    rows = conn.execute(
        sa.text(
            _TASKS_SQL.format(extra="and t.status = 'open' and (t.snoozed_until is null or t.snoozed_until <= :today)")
        ),
        params,
    ).mappings()
    snoozed = conn.execute(
        sa.text(
            "select count(*) from ops.tasks where status = 'open' and snoozed_until > :today "
            "and (:all or lower(owner_email) = :me)"
        ),
        params,
    ).scalar_one()
    return [dict(r) for r in rows], int(snoozed)


def task(conn: sa.Connection, user: User, task_id: int, today: date) -> dict[str, Any]:
    """One task the user may see (theirs, or any for a team lead), open or done."""
    if not user.has_tasks:
        raise NotAllowed
    row = _row(
        conn,
        _TASKS_SQL.format(extra="and t.task_id = :id"),
        {"today": today, "all": user.is_lead, "me": user.address, "id": task_id},
    )
    if row is None:
        raise NotAllowed
    return row


def _open_task(conn: sa.Connection, user: User, task_id: int) -> dict[str, Any]:
    found = task(conn, user, task_id, date.today())
    if found["status"] != "open":
        raise ValueError(f"task {task_id} is already {found['status']}")
    return found


def complete_task(conn: sa.Connection, user: User, task_id: int, outcome: str, note: str | None) -> None:
    """Done, and the outcome of its firing recorded (the PDCA loop's check)."""
    done = _open_task(conn, user, task_id)
    conn.execute(
        sa.text("update ops.tasks set status = 'done', completed_at = now(), completed_by = :me where task_id = :id"),
        {"me": user.address, "id": task_id},
    )
    set_outcome(conn, done["action_id"], outcome, user.address, note)
    audit(conn, user.address, "completed task", "task", task_id, outcome=outcome)


def snooze_task(conn: sa.Connection, user: User, task_id: int, until: date, today: date) -> None:
    if until <= today:
        raise ValueError("snooze to a day after today")
    _open_task(conn, user, task_id)
    conn.execute(sa.text("update ops.tasks set snoozed_until = :d where task_id = :id"), {"d": until, "id": task_id})
    audit(conn, user.address, "snoozed task", "task", task_id, until=until)


def task_owners(conn: sa.Connection, settings: Settings) -> list[str]:
    """Who a team lead can give a task to: every CSM and team lead."""
    csms = conn.execute(
        sa.text("select distinct owner_email from marts.account_directory where owner_email is not null")
    ).scalars()
    return sorted({*csms, *(normalized(a) for a in settings.team_leads)})


def reassign_task(conn: sa.Connection, settings: Settings, user: User, task_id: int, owner: str) -> None:
    """Team leads only; the new owner must be a workspace user who has tasks."""
    if not user.is_lead:
        raise NotAllowed
    moved = _open_task(conn, user, task_id)
    target = find_user(conn, settings, owner)
    if target is None or not target.has_tasks:
        raise ValueError(f"{owner!r} is not a CSM or team lead of this workspace")
    conn.execute(
        sa.text("update ops.tasks set owner_email = :o where task_id = :id"), {"o": target.address, "id": task_id}
    )
    audit(conn, user.address, "reassigned task", "task", task_id, previous=moved["owner_email"], owner=target.address)


# --------------------------------------------------------------------------
# Outcomes from a one-click link in a CSM alert (tasks record theirs on completion)


def firing(conn: sa.Connection, action_id: int) -> dict[str, Any] | None:
    return _row(
        conn,
        "select p.action_id, p.playbook, p.account_id, a.account_name, p.fired_at, p.outcome, p.recipient "
        "from ops.playbook_actions p left join marts.account_directory a using (account_id) "
        "where p.action_id = :id",
        {"id": action_id},
    )


def record_outcome_from_link(conn: sa.Connection, action_id: int, outcome: str) -> str | None:
    """The link is the authority for its one firing; returns the outcome recorded before, if any."""
    recipient = (firing(conn, action_id) or {}).get("recipient") or "unknown"
    return set_outcome(conn, action_id, outcome, actor=f"link:{recipient}")


# --------------------------------------------------------------------------
# Unsubscribes (from a link in customer email)


def unsubscribe(conn: sa.Connection, address: str, how: str) -> bool:
    """Suppress the address; False when it already was."""
    added = suppress(conn, address, "unsubscribe", f"link ({how})")
    audit(conn, normalized(address), "unsubscribed", "address", normalized(address), how=how, new=added)
    return added


def undo_unsubscribe(conn: sa.Connection, address: str) -> bool:
    """Lift an unsubscribe the address made itself (not a bounce, not a person's decision)."""
    removed = conn.execute(
        sa.text("delete from ops.suppressions where address = :a and reason = 'unsubscribe' and source like 'link%'"),
        {"a": normalized(address)},
    ).rowcount
    audit(conn, normalized(address), "resubscribed", "address", normalized(address), removed=bool(removed))
    return bool(removed)


def is_suppressed(conn: sa.Connection, address: str) -> str | None:
    return conn.execute(
        sa.text("select reason from ops.suppressions where address = :a"), {"a": normalized(address)}
    ).scalar()


def survey_response(conn: sa.Connection, answer: SurveyAnswer) -> dict[str, Any] | None:
    """The answer already given by this contact about this training, if any."""
    return _row(
        conn,
        "select score, comment, responded_at from ops.survey_responses where training_id = :t and contact_id = :c",
        {"t": answer.training_id, "c": answer.contact_id},
    )


def record_survey_response(conn: sa.Connection, answer: SurveyAnswer, score: int, comment: str | None) -> bool:
    """Record a survey answer once per contact and training; False when one was already recorded."""
    if score not in SURVEY_SCORES:
        raise ValueError(f"score {score} is not 0-10")
    added = conn.execute(
        sa.text(
            """insert into ops.survey_responses (action_id, account_id, contact_id, training_id, score, comment)
               values (:action_id, :account_id, :contact_id, :training_id, :score, :comment)
               on conflict (training_id, contact_id) do nothing"""
        ),
        {**answer.__dict__, "score": score, "comment": comment},
    ).rowcount
    actor = f"contact:{answer.contact_id}"
    audit(conn, actor, "answered survey", "training", answer.training_id, score=score, new=bool(added))
    return bool(added)


# --------------------------------------------------------------------------
# Pages' data


def _rows(conn: sa.Connection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(sql), params or {}).mappings()]


def _row(conn: sa.Connection, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The first row of a query, or None."""
    row = conn.execute(sa.text(sql), params).mappings().first()
    return dict(row) if row else None


def latest_as_of(conn: sa.Connection) -> date | None:
    return conn.execute(sa.text("select max(as_of_date) from marts.account_health")).scalar()


def _visible_account(conn: sa.Connection, user: User, account_id: str) -> dict[str, Any]:
    row = _row(conn, "select * from marts.account_directory where account_id = :id", {"id": account_id})
    if row is None or not (user.sees_everything or normalized(row["owner_email"] or "") == user.address):
        raise NotAllowed
    return row


def health_moves(
    latest: dict[str, Any], before: dict[str, Any] | None, weights: dict[str, float]
) -> list[dict[str, Any]]:
    """Each component's part in the score now and MOVED_DAYS before, in points.

    The score is the weighted mean of the components present (account_health):
    a component's part is weight x score / the sum of the present weights, so
    the parts add up to the score and their changes to its change.
    """

    def parts(row: dict[str, Any] | None) -> dict[str, float | None]:
        if row is None:
            return {c: None for c, _ in COMPONENTS}
        present = sum(weights[c] for c, _ in COMPONENTS if row.get(c) is not None)
        return {
            c: (weights[c] * float(row[c]) / present if row.get(c) is not None and present else None)
            for c, _ in COMPONENTS
        }

    now, then = parts(latest), parts(before)
    return [
        {
            "component": c,
            "score": latest.get(c),
            "score_before": (before or {}).get(c),
            "weight": weights[c],
            "points": now[c],
            "change": (now[c] or 0) - (then[c] or 0) if now[c] is not None or then[c] is not None else None,
        }
        for c, _ in COMPONENTS
    ]


def account_page(conn: sa.Connection, user: User, account_id: str, weights: dict[str, float]) -> dict[str, Any]:
    account = _visible_account(conn, user, account_id)
    as_of = latest_as_of(conn)
    history = _rows(
        conn,
        "select * from marts.account_health where account_id = :id and as_of_date > :since order by as_of_date",
        {"id": account_id, "since": (as_of or date.today()) - timedelta(days=HISTORY_DAYS)},
    )
    latest = history[-1] if history else None
    before = None
    if latest:
        target = latest["as_of_date"] - timedelta(days=MOVED_DAYS)
        before = next((h for h in reversed(history) if h["as_of_date"] <= target), None)
    params = {"id": account_id}
    renewals = _rows(conn, "select * from marts.renewal_windows where account_id = :id order by end_date", params)
    usage = _rows(
        conn,
        "select week_end_date, event_count from marts.account_usage_weekly where account_id = :id order by 1",
        params,
    )
    contacts = _rows(
        conn,
        "select c.contact_id, c.contact_name, c.email, c.role, s.reason as suppressed "
        "from marts.account_contacts c left join ops.suppressions s on s.address = lower(c.email) "
        "where c.account_id = :id order by c.role, c.contact_name",
        params,
    )
    communication = _rows(
        conn,
        """select p.action_id, p.playbook, p.fired_at, p.channel, p.status, p.detail, p.outcome, p.outcome_note,
                  coalesce((select json_agg(json_build_object(
                                'to', o.to_email, 'subject', o.subject, 'status', o.status, 'sent_at', o.sent_at,
                                'events', (select string_agg(distinct e.event, ', ')
                                           from ops.message_events e where e.message_id = o.message_id))
                            order by o.message_id)
                            from ops.outbox o where o.action_id = p.action_id), '[]') as messages
           from ops.playbook_actions p where p.account_id = :id
           order by p.fired_at desc, p.action_id desc limit 100""",
        params,
    )
    tasks = _rows(
        conn,
        "select task_id, title, due_date, owner_email, snoozed_until from ops.tasks "
        "where account_id = :id and status = 'open' order by due_date",
        params,
    )
    return {
        "account": account,
        "as_of": as_of,
        "latest": latest,
        "history": history,
        "moves": health_moves(latest, before, weights) if latest else [],
        "moved_since": before["as_of_date"] if before else None,
        "renewals": renewals,
        "usage": usage,
        "contacts": contacts,
        "communication": communication,
        "tasks": tasks,
        "risk": account_risk(conn, account_id),
    }


def renewals(conn: sa.Connection, user: User) -> list[dict[str, Any]]:
    """Contracts renewing in the next six months (and overdue ones), with health, priority and touch tier."""
    if not user.has_tasks:
        raise NotAllowed
    return _rows(
        conn,
        """select r.contract_id, r.account_id, a.account_name, a.owner_email, r.end_date, r.days_to_renewal,
                          r.plan, r.arr, r.currency,
                          r.renewal_window, h.health_score, h.health_band, s.priority, s.touch_tier
                   from marts.renewal_windows r
                   join marts.account_directory a using (account_id)
                   left join marts.account_health h
                     on h.account_id = r.account_id and h.as_of_date = (select max(as_of_date) from marts.account_health)
                   left join marts.account_segments s on s.account_id = r.account_id
                   where r.renewal_window in ('overdue', '0-2m', '2-4m', '4-6m')
                     and (:all or a.owner_email = :me)
                   order by r.end_date, a.account_name""",
        {"all": user.is_lead, "me": user.address},
    )


def kpis(conn: sa.Connection, user: User) -> dict[str, Any]:
    from csflow.digests import playbook_effectiveness

    if not user.reads_kpis:
        raise NotAllowed
    months = _rows(conn, "select * from marts.kpi_monthly order by month desc limit 12")[::-1]
    as_of = latest_as_of(conn) or date.today()
    return {
        "months": months,
        "effectiveness": playbook_effectiveness(conn, as_of),
        "as_of": as_of,
        "model": latest_model(conn),
    }
