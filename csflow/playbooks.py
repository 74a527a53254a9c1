"""Playbooks: turn audience models into firings, tasks and queued email.

Who qualifies is decided in SQL (the dbt audience models); this module only
decides what to do for each qualifying row, following playbooks.yml, and
records it. Per play, one transaction:

1. read the audience (`marts.<audience>`), drop accounts in cooldown,
2. pick the first matching rule and resolve its recipients,
3. insert the firings into ops.playbook_actions with ON CONFLICT DO NOTHING:
   (playbook, occasion_key) is unique, so only new occasions come back,
4. for those, create ops.tasks and queue rendered messages in ops.outbox.

Rules are held (not fired, so they fire on a later run) for one reason at a
time, counted per play (Holds): customer-facing ones while the validation gate
is closed (the data cannot be trusted) or the settings would let anyone forge
the unsubscribe links; every rule on a backfill's past date (an occasion still
current fires when today's run sees it; one that has passed is not emailed
late, to customers or CSMs). Customer email
never goes to a suppressed address (csflow.suppressions).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from csflow.addresses import normalized
from csflow.catalogue import LADDER_COLUMNS, Catalogue, parse_catalogue
from csflow.config import ConfigError, Settings
from csflow.links import account_url, outcome_links, survey_links, unsubscribe_url
from csflow.outbox import Message, queue_messages
from csflow.render import Renderer
from csflow.suppressions import suppressed, sync_from_contacts
from csflow.texts import all_texts

# Why customer-facing rules did not fire (PlayResult.held); settings give their own reason.
GATE_CLOSED = "validation gate closed"
PAST_DATE = "past date (backfill)"

CHANNELS = ("csm_alert", "customer_email", "task_only")
RECIPIENTS = ("owner_csm", "decision_makers", "trained_contact", "data_team")

# --------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Rule:
    channel: str
    recipients: tuple[str, ...]
    template: str | None
    when: dict[str, tuple[str, ...]] = field(default_factory=dict)
    task_title: str | None = None
    task_due_days: int = 7

    @property
    def customer_facing(self) -> bool:
        return self.channel == "customer_email"

    def matches(self, row: dict[str, Any]) -> bool:
        return all(_as_text(row.get(column)) in allowed for column, allowed in self.when.items())


def _as_text(value: Any) -> str:
    """How a `when` value and an audience value compare: as text, booleans as true/false, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Playbook:
    name: str
    audience: str
    rules: tuple[Rule, ...]
    cooldown_days: int = 0
    enabled: bool = True  # false: checked by doctor, never run (a play waiting for evidence)


@dataclass(frozen=True)
class PlaybookConfig:
    playbooks: tuple[Playbook, ...]
    default_locale: str = "en"
    locale_by_region: dict[str, str] = field(default_factory=dict)
    catalogue: Catalogue = field(default_factory=Catalogue)


def load_playbooks(path: Path, renderer: Renderer | None = None) -> PlaybookConfig:
    """Read playbooks.yml; every mistake names the file, the play and the key."""
    if not path.exists():
        raise ConfigError(f"{path}: playbooks file not found (setting playbooks_file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    defaults = data.get("defaults") or {}
    plays = []
    for i, raw in enumerate(data.get("playbooks") or []):
        where = f"{path}: playbook #{i + 1} ({raw.get('name', '?')})"
        for key in ("name", "audience", "rules"):
            if not raw.get(key):
                raise ConfigError(f"{where}: '{key}' is required")
        rules = []
        for j, r in enumerate(raw["rules"]):
            rwhere = f"{where}, rule #{j + 1}"
            channel = r.get("channel")
            if channel not in CHANNELS:
                raise ConfigError(f"{rwhere}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
            recipients = tuple(r.get("recipients") or [])
            bad = [x for x in recipients if x not in RECIPIENTS]
            if bad:
                raise ConfigError(f"{rwhere}: recipient {bad[0]!r} is not one of {', '.join(RECIPIENTS)}")
            if channel != "task_only" and not (r.get("template") and recipients):
                raise ConfigError(f"{rwhere}: a {channel} rule needs a template and recipients")
            if renderer and r.get("template"):
                # customers read their region's language; CSMs the team's (any locale csflow ships)
                customer_locales = {defaults.get("locale", "en"), *(defaults.get("locale_by_region") or {}).values()}
                for locale in sorted(customer_locales if channel == "customer_email" else set(all_texts())):
                    if not renderer.has(r["template"], locale):
                        raise ConfigError(f"{rwhere}: no template templates/{r['template']}.{locale}.html/.txt")
            task = r.get("task") or {}
            rules.append(
                Rule(
                    channel=channel,
                    recipients=recipients,
                    template=r.get("template"),
                    when={
                        k: tuple(_as_text(x) for x in (v if isinstance(v, list) else [v]))
                        for k, v in (r.get("when") or {}).items()
                    },
                    task_title=task.get("title"),
                    task_due_days=int(task.get("due_in_days", 7)),
                )
            )
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: 'enabled' must be true or false, got {enabled!r}")
        plays.append(Playbook(raw["name"], raw["audience"], tuple(rules), int(raw.get("cooldown_days", 0)), enabled))
    names = [p.name for p in plays]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: playbook names must be unique")
    return PlaybookConfig(
        tuple(plays),
        defaults.get("locale", "en"),
        dict(defaults.get("locale_by_region") or {}),
        parse_catalogue(data.get("catalogue"), str(path)),
    )


def check_audiences(config: PlaybookConfig, path: Path, models: dict[str, set[str] | None]) -> None:
    """Every play's audience is a dbt model of schema marts and every `when` names one of its
    columns (a misspelt one would otherwise match nothing and fire nothing, silently).

    models: mart name -> its declared columns (csflow.dbt.mart_models()).
    """
    for play in config.playbooks:
        if play.audience not in models:
            audiences = ", ".join(sorted(m for m in models if m.startswith("audience_")))
            raise ConfigError(
                f"{path}: playbook {play.name}: audience {play.audience!r} is not a dbt model in "
                f"dbt_project/models/marts; the audiences are {audiences}"
            )
        columns = models[play.audience]
        if columns is None:
            continue  # a model whose YAML declares no columns: nothing to check against
        if "plan" in columns:
            columns = columns | set(LADDER_COLUMNS)
        for j, rule in enumerate(play.rules):
            for column in rule.when:
                if column not in columns:
                    raise ConfigError(
                        f"{path}: playbook {play.name}, rule #{j + 1}: when: {play.audience} has no column "
                        f"{column!r} (its columns: {', '.join(sorted(columns))})"
                    )


# --------------------------------------------------------------------------
# Running the plays


@dataclass(frozen=True)
class Holds:
    """Why rules may not fire now (held, so they fire on a later run), one reason at a time:
    customer-facing rules (a closed gate, settings that would let links be forged), or every
    rule (a past date: neither customers nor CSMs are told about occasions late)."""

    customer: str | None = None
    every: str | None = None

    def reason(self, rule: Rule) -> str | None:
        return self.every or (self.customer if rule.customer_facing else None)


@dataclass
class PlayResult:
    playbook: str
    candidates: int = 0
    fired: int = 0
    already_fired: int = 0
    skipped: int = 0  # fired, but nobody could be emailed (recorded with a reason)
    cooling_down: int = 0
    held: dict[str, int] = field(default_factory=dict)  # customer-facing, not fired: reason -> occasions
    unmatched: int = 0
    messages: int = 0
    tasks: int = 0
    missing_audience: bool = False


@dataclass
class _Contact:
    contact_id: str
    email: str
    name: str | None
    role: str | None


# What the engine reads of marts.account_directory: the locale's region, the CSM's name, the alert's glance.
ACCOUNT_COLUMNS = ("account_id", "region", "owner_name", "health_score", "health_band", "arr", "currency")


@dataclass
class _Directory:
    """Contacts, accounts (region, CSM's name, health, ARR) and suppressed addresses, read once per run."""

    by_account: dict[str, list[_Contact]]
    by_id: dict[str, _Contact]
    accounts: dict[str, dict[str, Any]]  # account_id -> marts.account_directory's row
    suppressed: dict[str, str]  # address -> reason

    def account(self, account_id: str) -> dict[str, Any]:
        """The account's directory row; every column None for an account the directory lacks."""
        return self.accounts.get(account_id) or dict.fromkeys(ACCOUNT_COLUMNS)

    def main_contact(self, account_id: str) -> _Contact | None:
        """Who a CSM talks to: the first decision maker, else the first contact."""
        people = self.by_account.get(account_id, [])
        return next((c for c in people if c.role == "decision_maker"), people[0] if people else None)

    @classmethod
    def load(cls, conn: sa.Connection) -> _Directory:
        by_account: dict[str, list[_Contact]] = defaultdict(list)
        by_id: dict[str, _Contact] = {}
        for row in conn.execute(
            sa.text(
                "select contact_id, account_id, email, contact_name, role from marts.account_contacts "
                "order by account_id, contact_id"
            )
        ):
            contact = _Contact(row[0], row[2], row[3], row[4])
            by_account[row[1]].append(contact)
            by_id[row[0]] = contact
        accounts = {
            row["account_id"]: dict(row)
            for row in conn.execute(
                sa.text(f"select {', '.join(ACCOUNT_COLUMNS)} from marts.account_directory")
            ).mappings()
        }
        return cls(by_account, by_id, accounts, suppressed(conn))


def _recipients(
    rule: Rule, row: dict[str, Any], directory: _Directory, settings: Settings
) -> tuple[list[_Contact], str]:
    """Who gets the message, after dropping suppressed customer addresses; and why nobody, if nobody."""
    people: list[_Contact] = []
    for kind in rule.recipients:
        if kind == "owner_csm" and row.get("owner_email"):
            people.append(_Contact("", row["owner_email"], None, "csm"))
        elif kind == "data_team":
            people.append(_Contact("", settings.data_team_email, None, "data_team"))
        elif kind == "decision_makers":
            people += [c for c in directory.by_account.get(row["account_id"], []) if c.role == "decision_maker"]
        elif kind == "trained_contact" and row.get("contact_id") in directory.by_id:
            people.append(directory.by_id[row["contact_id"]])
    if not people:
        return [], f"no {' or '.join(rule.recipients)} on record"
    if rule.customer_facing:
        reasons = sorted(
            {directory.suppressed[a] for p in people if (a := normalized(p.email)) in directory.suppressed}
        )
        people = [p for p in people if normalized(p.email) not in directory.suppressed]
        if not people:
            return [], f"every recipient is suppressed ({', '.join(reasons)})"
    unique = {normalized(p.email): p for p in people}
    return list(unique.values()), ""


def _audience_rows(conn: sa.Connection, audience: str) -> list[dict[str, Any]] | None:
    exists = conn.execute(sa.text("select to_regclass(:name)"), {"name": f"marts.{audience}"}).scalar()
    if exists is None:
        return None
    table = sa.Table(audience, sa.MetaData(), schema="marts", autoload_with=conn)
    return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def _cooling_down(conn: sa.Connection, play: Playbook, as_of: date) -> set[str]:
    if play.cooldown_days <= 0:
        return set()
    return set(
        conn.execute(
            sa.text(
                "select distinct account_id from ops.playbook_actions "
                "where playbook = :p and as_of_date > :since and as_of_date <= :as_of"
            ),
            {"p": play.name, "since": as_of - timedelta(days=play.cooldown_days), "as_of": as_of},
        ).scalars()
    )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(row, default=str))


@dataclass
class _Planned:
    """An audience row that will fire, with its rule and who gets the message."""

    row: dict[str, Any]
    rule: Rule
    people: list[_Contact]
    why_nobody: str  # when a rule with recipients has nobody to send to

    @property
    def skipped(self) -> bool:
        return bool(self.rule.recipients) and not self.people


def plan_firings(
    play: Playbook,
    rows: list[dict[str, Any]],
    cooling: set[str],
    holds: Holds,
    directory: _Directory,
    settings: Settings,
    result: PlayResult,
) -> list[_Planned]:
    """Which audience rows fire and how, counting the ones that do not. No database."""
    planned: list[_Planned] = []
    for row in rows:
        if row["account_id"] in cooling:
            result.cooling_down += 1
            continue
        rule = next((r for r in play.rules if r.matches(row)), None)
        if rule is None:
            result.unmatched += 1
            continue
        held = holds.reason(rule)
        if held:
            result.held[held] = result.held.get(held, 0) + 1
            continue
        people, why_nobody = _recipients(rule, row, directory, settings) if rule.recipients else ([], "")
        planned.append(_Planned(row, rule, people, why_nobody))
    return planned


def record_firings(conn: sa.Connection, play: Playbook, as_of: date, planned: list[_Planned]) -> dict[str, int]:
    """Insert the firings; (playbook, occasion_key) is unique, so only new occasions come back (key -> action_id)."""
    inserted = conn.execute(
        sa.text(
            """insert into ops.playbook_actions
                 (playbook, account_id, occasion_key, as_of_date, channel, recipient, status, detail)
               select :playbook, x.account_id, x.occasion_key, :as_of, x.channel, x.recipient, x.status, x.detail
               from jsonb_to_recordset(cast(:rows as jsonb))
                 as x(account_id text, occasion_key text, channel text, recipient text, status text, detail text)
               on conflict (playbook, occasion_key) do nothing
               returning action_id, occasion_key"""
        ),
        {
            "playbook": play.name,
            "as_of": as_of,
            "rows": json.dumps(
                [
                    {
                        "account_id": p.row["account_id"],
                        "occasion_key": p.row["occasion_key"],
                        "channel": p.rule.channel,
                        "recipient": ", ".join(c.email for c in p.people) or None,
                        "status": "skipped" if p.skipped else "pending",
                        "detail": p.why_nobody or None,
                    }
                    for p in planned
                ]
            ),
        },
    ).all()
    return {occasion: action_id for action_id, occasion in inserted}


def _messages_and_task(
    p: _Planned,
    action_id: int,
    play: Playbook,
    config: PlaybookConfig,
    settings: Settings,
    renderer: Renderer,
    as_of: date,
    directory: _Directory,
) -> tuple[list[Message], dict[str, Any] | None]:
    """What one new firing sends (rendered per recipient) and the task it opens, if any.

    Customer email is in the account's language, from the company, signed by
    the owning CSM, with Reply-To the CSM. A CSM's alert is in the team's
    language (internal_locale) and carries what the CSM needs to act: today's
    health, ARR, whom to talk to, the outcome buttons and the account's page.
    """
    account = directory.account(p.row["account_id"])
    customer = p.rule.customer_facing
    if customer:
        locale = config.locale_by_region.get(str(account.get("region")), config.default_locale)
    else:
        locale = settings.internal_locale
    shared = {
        **p.row,
        "action_id": action_id,
        "company_name": settings.company_name,
        "csm_name": account.get("owner_name"),
    }
    if p.people and not customer:
        contact = directory.main_contact(p.row["account_id"])
        shared.update(
            account=account,
            contact=contact.__dict__ if contact else None,
            outcome_links=outcome_links(settings, action_id),
            account_url=account_url(settings, p.row["account_id"]),
        )
    messages = []
    for person in p.people:
        context = {**shared, "recipient_name": person.name, "unsubscribe_url": None}
        if customer:
            context["unsubscribe_url"] = unsubscribe_url(settings, person.email)
            if p.row.get("training_id") is not None:
                context["survey_links"] = survey_links(settings, action_id, p.row, person.contact_id)
        rendered = renderer.render(p.rule.template or "", locale, context)
        messages.append(
            Message(
                dedupe_key=f"action:{action_id}:{normalized(person.email)}",
                kind="playbook",
                to_email=person.email,
                to_name=person.name,
                subject=rendered.subject,
                html_body=rendered.html,
                text_body=rendered.text,
                action_id=action_id,
                playbook=play.name,
                is_customer_facing=customer,
                unsubscribe_url=context["unsubscribe_url"],
                from_email=settings.customer_sender if customer else None,
                from_name=settings.company_name if customer else None,
                reply_to=p.row.get("owner_email") if customer else None,
            )
        )
    task = None
    if p.rule.task_title and p.row.get("owner_email"):
        task = {
            "action_id": action_id,
            "owner_email": p.row["owner_email"],
            "account_id": p.row["account_id"],
            "title": p.rule.task_title.format(**_jsonable(p.row)),
            "due_date": (as_of + timedelta(days=p.rule.task_due_days)).isoformat(),
        }
    return messages, task


def _insert_tasks(conn: sa.Connection, tasks: list[dict[str, Any]]) -> None:
    if tasks:
        conn.execute(
            sa.text(
                """insert into ops.tasks (action_id, owner_email, account_id, title, due_date)
                   select x.action_id, x.owner_email, x.account_id, x.title, x.due_date
                   from jsonb_to_recordset(cast(:rows as jsonb))
                     as x(action_id bigint, owner_email text, account_id text, title text, due_date date)"""
            ),
            {"rows": json.dumps(tasks)},
        )


def run_play(
    engine: sa.Engine,
    play: Playbook,
    config: PlaybookConfig,
    settings: Settings,
    renderer: Renderer,
    as_of: date,
    holds: Holds,
    directory: _Directory,
) -> PlayResult:
    """Fire one play in one transaction: plan, record, then open tasks and queue email for the new firings.

    holds: why rules may not fire now, if any may not.
    """
    result = PlayResult(play.name)
    with engine.begin() as conn:
        rows = _audience_rows(conn, play.audience)
        if rows is None:
            result.missing_audience = True
            return result
        result.candidates = len(rows)
        rows = [{**row, **config.catalogue.ladder(row["plan"])} if "plan" in row else row for row in rows]
        planned = plan_firings(play, rows, _cooling_down(conn, play, as_of), holds, directory, settings, result)
        if not planned:
            return result
        new_actions = record_firings(conn, play, as_of, planned)
        result.already_fired = len(planned) - len(new_actions)
        messages: list[Message] = []
        tasks: list[dict[str, Any]] = []
        for p in planned:
            action_id = new_actions.get(p.row["occasion_key"])
            if action_id is None:
                continue
            result.fired += 1
            result.skipped += p.skipped
            sent, task = _messages_and_task(p, action_id, play, config, settings, renderer, as_of, directory)
            messages += sent
            tasks += [task] if task else []
        _insert_tasks(conn, tasks)
        result.tasks = len(tasks)
        result.messages = len(queue_messages(conn, messages))
    return result


def run_playbooks(
    engine: sa.Engine,
    settings: Settings,
    as_of: date,
    gate_open: bool,
    config: PlaybookConfig | None = None,
    past_date: bool = False,
) -> list[PlayResult]:
    """Run every play of playbooks.yml for one as_of; see the module docstring.

    past_date=True (a backfill's past dates) holds every play: nobody is told late.
    """
    config = config or load_playbooks(settings.playbooks_file, Renderer())
    renderer = Renderer(catalogue=config.catalogue)
    holds = Holds(
        customer=(None if gate_open else GATE_CLOSED) or settings.customer_email_refusal(),
        every=PAST_DATE if past_date else None,
    )
    with engine.begin() as conn:
        sync_from_contacts(conn)
        directory = _Directory.load(conn)
    return [
        run_play(engine, play, config, settings, renderer, as_of, holds, directory)
        for play in config.playbooks
        if play.enabled
    ]


def firings(engine: sa.Engine, as_of: date, limit: int = 1000) -> list[dict[str, Any]]:
    """The firings recorded for as_of (the run's table artifact)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select action_id, playbook, account_id, channel, status, coalesce(detail, '') as detail "
                "from ops.playbook_actions where as_of_date = :as_of order by playbook, action_id limit :n"
            ),
            {"as_of": as_of, "n": limit},
        ).mappings()
        return [dict(r) for r in rows]
