"""Playbooks over real audience models: each occasion fires once, a closed gate
stops customer email, unsubscribed contacts get nothing, names are escaped."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from csflow.config import ConfigError
from csflow.dbt import run_dbt
from csflow.mailers import FileMailer
from csflow.outbox import deliver
from csflow.playbooks import GATE_CLOSED, load_playbooks, run_playbooks
from csflow.render import Renderer
from csflow.run_context import write_run_context
from tests.conftest import EVIL

AS_OF = date(2026, 3, 31)


@pytest.fixture
def built(built_marts):
    return built_marts[1]


def outbox(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from ops.outbox order by message_id")).all()


def test_every_occasion_fires_once_however_often_the_run_repeats(built, marts_engine) -> None:
    first = run_playbooks(marts_engine, built, AS_OF, gate_open=True)
    assert sum(r.fired for r in first) > 20
    assert {r.playbook for r in first if r.fired} >= {"renewal_alert", "post_training_survey", "usage_decline"}
    queued = len(outbox(marts_engine))
    second = run_playbooks(marts_engine, built, AS_OF, gate_open=True)
    assert sum(r.fired for r in second) == 0
    assert len(outbox(marts_engine)) == queued
    with marts_engine.connect() as conn:
        dupes = conn.execute(
            sa.text("select count(*) from (select playbook, occasion_key from ops.playbook_actions group by 1, 2 having count(*) > 1) d")
        ).scalar_one()
        tasks = conn.execute(sa.text("select count(*) from ops.tasks")).scalar_one()
    assert dupes == 0 and tasks == sum(r.tasks for r in first)


def test_a_closed_gate_stops_customer_email_but_not_csm_alerts(built, marts_engine) -> None:
    results = {r.playbook: r for r in run_playbooks(marts_engine, built, AS_OF, gate_open=False)}
    assert results["post_training_survey"].fired == 0
    assert results["post_training_survey"].held == {GATE_CLOSED: results["post_training_survey"].candidates}
    assert results["post_training_survey"].candidates > 0
    assert all(not m.is_customer_facing for m in outbox(marts_engine))
    assert results["usage_decline"].fired > 0  # internal alert to the CSM
    # Once the data is trusted again the blocked occasions fire.
    reopened = {r.playbook: r for r in run_playbooks(marts_engine, built, AS_OF, gate_open=True)}
    assert reopened["post_training_survey"].fired == results["post_training_survey"].candidates


def test_unsubscribed_contacts_get_nothing_and_the_firing_says_why(built_marts, built, marts_engine) -> None:
    db, _ = built_marts
    with marts_engine.begin() as conn:
        trained = conn.execute(sa.text("select contact_id from marts.audience_post_training_survey limit 1")).scalar_one()
        conn.execute(sa.text("update raw.contacts set is_unsubscribed = true where contact_id = :c"), {"c": trained})
    try:
        run_dbt(db, built, ["run", "--select", "account_contacts"], use_prefect=False)  # as the next build would
        run_playbooks(marts_engine, built, AS_OF, gate_open=True)
    finally:
        with marts_engine.begin() as conn:
            conn.execute(sa.text("update raw.contacts set is_unsubscribed = false where contact_id = :c"), {"c": trained})
        run_dbt(db, built, ["run", "--select", "account_contacts"], use_prefect=False)
    with marts_engine.connect() as conn:
        status, detail = conn.execute(
            sa.text(
                "select status, detail from ops.playbook_actions where playbook = 'post_training_survey' "
                "and occasion_key like '%' || :c"
            ),
            {"c": trained},
        ).one()
        unsubscribed = conn.execute(
            sa.text(
                "select count(*) from ops.outbox o join staging.stg_landing__contacts c on lower(c.email) = lower(o.to_email) "
                "where c.is_unsubscribed and o.is_customer_facing"
            )
        ).scalar_one()
        suppressed = conn.execute(
            sa.text(
                "select s.reason, s.source from ops.suppressions s "
                "join staging.stg_landing__contacts c on lower(c.email) = s.address where c.contact_id = :c"
            ),
            {"c": trained},
        ).one()
    assert (status, detail) == ("skipped", "every recipient is suppressed (unsubscribe)")
    assert tuple(suppressed) == ("unsubscribe", "contacts.is_unsubscribed")  # kept, per address
    assert unsubscribed == 0
    assert all(m.unsubscribe_url for m in outbox(marts_engine) if m.is_customer_facing)


def test_hostile_account_names_render_escaped(built, marts_engine) -> None:
    run_playbooks(marts_engine, built, AS_OF, gate_open=True)
    hostile = [m for m in outbox(marts_engine) if "alert(1)" in m.html_body]
    assert hostile, "the renamed account should have received a renewal message"
    for m in hostile:
        assert EVIL not in m.html_body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in m.html_body


def test_playbook_mistakes_name_the_play_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "playbooks.yml"
    bad.write_text(
        "playbooks:\n  - name: renewal_alert\n    audience: audience_renewal_alert\n"
        "    rules:\n      - channel: carrier_pigeon\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"playbook #1 \(renewal_alert\), rule #1: channel 'carrier_pigeon'"):
        load_playbooks(bad)
    bad.write_text(
        "playbooks:\n  - name: x\n    audience: a\n    rules:\n      - channel: csm_alert\n"
        "        recipients: [owner_csm]\n        template: no_such_template\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="no template templates/no_such_template"):
        load_playbooks(bad, Renderer())


def test_the_shipped_playbooks_load_with_all_their_templates() -> None:
    config = load_playbooks(Path(__file__).parents[1] / "playbooks.yml", Renderer())
    assert [p.name for p in config.playbooks] == [
        "renewal_alert",
        "post_training_survey",
        "inquiry_surge",
        "usage_decline",
        "nps_detractor",
        "single_feature_cross_sell",
        "high_interest",
        "churn_risk_high",
    ]
    # Off until a model has been validated on the team's own history.
    assert [p.name for p in config.playbooks if not p.enabled] == ["churn_risk_high"]


def test_a_30_day_backfill_fires_each_occasion_once_on_the_first_day_it_appears(built_marts, marts_engine) -> None:
    """The audiences are rebuilt by dbt for each of 30 days, as a backfill does,
    and the plays run after each build: an occasion present on many days fires
    once, on its first day, and cooldowns hold across days."""
    db, settings = built_marts
    config = load_playbooks(settings.playbooks_file)
    days = [AS_OF - timedelta(days=29 - i) for i in range(30)]  # ends on AS_OF: the marts end as they were
    first_seen: dict[tuple[str, str], date] = {}
    days_seen: dict[tuple[str, str], int] = defaultdict(int)
    fired = 0
    for day in days:
        write_run_context(marts_engine, day, "backfill-test", settings.timezone)
        # Only what the audiences need (views too: rebuilding a table drops the views over it).
        run_dbt(db, settings, ["run", "--select", "+tag:audience"], use_prefect=False)
        with marts_engine.connect() as conn:
            for play in config.playbooks:
                for key in conn.execute(sa.text(f"select occasion_key from marts.{play.audience}")).scalars():
                    first_seen.setdefault((play.name, key), day)
                    days_seen[(play.name, key)] += 1
        fired += sum(r.fired for r in run_playbooks(marts_engine, settings, day, gate_open=True, config=config))
    # Views outside that selection that were built on a view or table it replaced went with it
    # (dbt drops the old relation with CASCADE): the shared marts are whole again after one full run.
    run_dbt(db, settings, ["run"], use_prefect=False)
    with marts_engine.connect() as conn:
        actions = conn.execute(sa.text("select playbook, occasion_key, account_id, as_of_date from ops.playbook_actions")).all()
        messages = conn.execute(sa.text("select count(*), count(distinct dedupe_key) from ops.outbox")).one()
    assert len(actions) == fired and messages[0] == messages[1]
    assert sum(n > 1 for n in days_seen.values()) > 10, "occasions should recur across days"
    cooldown = {p.name: p.cooldown_days for p in config.playbooks}
    for playbook, key, _, fired_on in actions:
        assert fired_on == first_seen[(playbook, key)] or cooldown[playbook] > 0
    without_cooldown = {k for k in first_seen if cooldown[k[0]] == 0}
    assert {(p, k) for p, k, *_ in actions if cooldown[p] == 0} == without_cooldown
    by_account: dict[tuple[str, str], list[date]] = defaultdict(list)
    for playbook, _, account, fired_on in actions:
        by_account[(playbook, account)].append(fired_on)
    for (playbook, _), dates in by_account.items():
        dates.sort()
        assert all((b - a).days >= cooldown[playbook] for a, b in zip(dates, dates[1:], strict=False))


def test_delivery_gives_each_firing_the_status_of_its_messages(built, marts_engine, tmp_path: Path) -> None:
    run_playbooks(marts_engine, built, AS_OF, gate_open=True)
    with marts_engine.begin() as conn:
        # One firing's only message fails permanently before the sender gets to it.
        failing = conn.execute(
            sa.text(
                "update ops.outbox set status = 'failed' where message_id = (select min(message_id) from ops.outbox "
                "where action_id in (select action_id from ops.outbox group by 1 having count(*) = 1)) returning action_id"
            )
        ).scalar_one()
    report = deliver(marts_engine, FileMailer(tmp_path, "csflow@example.com"))
    assert report.sent > 0
    with marts_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.text(
                    """select a.action_id, a.status from ops.playbook_actions a
                       where exists (select 1 from ops.outbox o where o.action_id = a.action_id)"""
                )
            ).all()
        )
        without_messages = conn.execute(
            sa.text(
                """select distinct a.status from ops.playbook_actions a
                   where not exists (select 1 from ops.outbox o where o.action_id = a.action_id)"""
            )
        ).scalars().all()
    assert statuses.pop(failing) == "failed"
    assert set(statuses.values()) == {"sent"}
    assert "sent" not in without_messages  # a firing with nothing to send is never called sent


def test_a_window_var_changes_who_fires_and_what_every_email_says(warehouse, engine, settings_for, tmp_path: Path) -> None:
    """Only dbt_project.yml's vars change (here through --vars): the audiences,
    the unit tests (which pin what they assume) and the emails follow."""
    from csflow.demo import generate
    from csflow.ingest import ingest_folder

    settings = settings_for(warehouse, playbooks_file=Path(__file__).parents[1] / "playbooks.yml")
    generate(tmp_path / "landing", accounts=150, seed=8, as_of=AS_OF)
    ingest_folder(engine, tmp_path / "landing")
    write_run_context(engine, AS_OF, "vars", settings.timezone)
    select = [
        "build", "--select", "+audience_renewal_alert", "+audience_high_interest", "+account_contacts", "+account_directory",
        "--exclude", "test_type:data",
    ]

    def fire(dbt_vars: dict | None) -> tuple[set[str], list[str], list[str]]:
        with engine.begin() as conn:
            conn.execute(sa.text("truncate ops.outbox, ops.tasks, ops.playbook_actions cascade"))
        run_dbt(warehouse, settings, select, use_prefect=False, dbt_vars=dbt_vars)  # unit tests included
        results = {r.playbook: r for r in run_playbooks(engine, settings, AS_OF, gate_open=True)}
        assert results["renewal_alert"].fired and results["high_interest"].fired
        with engine.connect() as conn:
            fired = set(conn.execute(sa.text("select occasion_key from ops.playbook_actions where playbook = 'renewal_alert'")).scalars())
            texts = {
                play: [t + h for t, h in conn.execute(sa.text("select text_body, html_body from ops.outbox where playbook = :p"), {"p": play})]
                for play in ("renewal_alert", "high_interest")
            }
        csm = [t for t in texts["renewal_alert"] if "upsell proposal" in t]
        return fired, csm, texts["high_interest"]

    def window(start: int, end: int) -> tuple[str, ...]:
        return (f"{start}-{end} month window", f"{start}〜{end}か月前")

    def days(n: int) -> tuple[str, ...]:
        return (f"last {n} days", f"({n} days)", f"直近{n}日間", f"（{n}日）")

    def says(text: str, phrases: tuple[str, ...]) -> bool:
        """English and Japanese emails each say it their way: every phrase of one language is there."""
        half = len(phrases) // 2 or 1
        return all(p in text for p in phrases[:half]) or all(p in text for p in phrases[half:])

    default_fired, default_renewals, default_interest = fire(None)
    assert default_renewals and all(says(t, window(2, 4)) for t in default_renewals)
    assert all(says(t, days(14)) for t in default_interest)

    wide_fired, wide_renewals, wide_interest = fire(
        {"renewal_upsell_window_start_months": 1, "renewal_upsell_window_end_months": 5, "high_interest_window_days": 10}
    )
    assert wide_fired > default_fired  # a wider window: every default occasion and more
    assert wide_renewals and all(says(t, window(1, 5)) for t in wide_renewals)
    assert wide_interest and all(says(t, days(10)) and not any(p in t for p in days(14)) for t in wide_interest)
