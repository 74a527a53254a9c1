"""What people read, as they read it: customer email from the company with
Reply-To the owning CSM and signed by them, names instead of codes, dates as
people write them, no upgrade offer to the top plan; a survey that collects
answers in the workspace; CSM alerts in the team's language with what the CSM
needs to act.

Over the session's built marts (real PostgreSQL), the real playbook engine and
the file backend's real .eml files.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from csflow.catalogue import parse_catalogue
from csflow.config import ConfigError, Settings, load_settings
from csflow.dbt import run_dbt
from csflow.mailers import deliver_outbox
from csflow.playbooks import load_playbooks, run_playbooks
from csflow.render import Renderer
from csflow.texts import long_date, word
from csflow.web import create_app
from tests.conftest import MARTS_AS_OF
from tests.test_workspace import bodies, workspace_settings

PLAYBOOKS = Path(__file__).parents[1] / "playbooks.yml"
CODES = ("api_integration", "admin_basics", "advanced_analytics", "high_touch", "low_touch", "tech_touch")


def messages(engine: sa.Engine, **where: object) -> list[dict]:
    clause = " and ".join(f"o.{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select o.*, a.account_id from ops.outbox o left join ops.playbook_actions a using (action_id) "
                    f"where {clause} order by message_id"
                ),
                where,
            ).mappings()
        ]


def directory(engine: sa.Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {
            r["account_id"]: dict(r)
            for r in conn.execute(sa.text("select * from marts.account_directory")).mappings()
        }


@pytest.fixture
def fired_as(built_marts, marts_engine, tmp_path: Path):
    """Fire the day's plays with workspace settings (overridable); returns the settings."""

    def fire(**overrides: object) -> Settings:
        settings = workspace_settings(built_marts, tmp_path, company_name="Acme SaaS K.K.", **overrides)
        run_playbooks(marts_engine, settings, MARTS_AS_OF, gate_open=True)
        return settings

    return fire


# --------------------------------------------------------------------------
# Customer email


def test_customer_email_is_from_the_company_replies_reach_the_csm_and_the_csm_signs_it(
    fired_as, marts_engine
) -> None:
    settings = fired_as(customer_from_email="cs@acme-saas.example.org")
    accounts = directory(marts_engine)
    customer = messages(marts_engine, is_customer_facing=True)
    internal = messages(marts_engine, is_customer_facing=False)
    assert customer and internal
    for m in customer:
        account = accounts[m["account_id"]]
        assert (m["from_email"], m["from_name"]) == ("cs@acme-saas.example.org", "Acme SaaS K.K.")
        assert m["reply_to"] == account["owner_email"]
        assert account["owner_name"] and account["owner_name"] in m["text_body"]
        assert account["owner_name"] in m["html_body"] and "Acme SaaS K.K." in m["text_body"]
    # CSM email stays from csflow, with no Reply-To to a customer's CSM.
    assert all(m["from_email"] is None and m["reply_to"] is None for m in internal)

    # The .eml a mail client opens says the same.
    report = deliver_outbox(marts_engine, settings)
    assert report.sent == len(customer) + len(internal)
    eml = next(p for p in sorted(settings.outbox_dir.glob("*.eml")) if b"List-Unsubscribe:" in p.read_bytes())
    head = eml.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
    assert 'From: "Acme SaaS K.K." <cs@acme-saas.example.org>\r\n' in head
    assert re.search(r"^Reply-To: csm\d+@example\.com\r$", head, re.M)


def test_customers_read_names_and_dates_not_codes(fired_as, marts_engine) -> None:
    fired_as()
    customer = messages(marts_engine, is_customer_facing=True)
    plays = {m["playbook"] for m in customer}
    assert {"post_training_survey", "renewal_alert"} <= plays
    for m in customer:
        text = m["subject"] + "\n" + m["text_body"]
        assert not m["subject"].startswith(" ") and m["subject"] == m["subject"].strip()
        assert not any(code in text for code in CODES), text
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), text  # no machine dates
        japanese = "配信停止" in m["text_body"]
        if japanese:
            assert " 様" not in text and "様 " not in text  # names and 様 written together
        if m["playbook"] in ("renewal_alert", "post_training_survey"):  # they state a date
            assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日" if japanese else r"\d{1,2} [A-Z][a-z]+ \d{4}", text), text
    renewal_ja = [m for m in customer if m["playbook"] == "renewal_alert" and "配信停止" in m["text_body"]]
    renewal_en = [m for m in customer if m["playbook"] == "renewal_alert" and "Unsubscribe" in m["text_body"]]
    assert renewal_ja or renewal_en
    for m in renewal_ja:
        assert re.search(r"(スターター|スタンダード|プロフェッショナル|エンタープライズ)プラン", m["subject"])
    for m in renewal_en:
        assert re.search(r"(Starter|Standard|Professional|Enterprise) plan", m["subject"])


def test_the_top_plan_gets_a_renewal_check_in_not_an_upgrade_offer(built_marts, fired_as, marts_engine) -> None:
    fired_as()
    with marts_engine.connect() as conn:
        plans = dict(conn.execute(sa.text("select contract_id, plan from marts.renewal_windows")).all())
        firings = conn.execute(
            sa.text(
                "select a.occasion_key, o.text_body from ops.playbook_actions a join ops.outbox o using (action_id) "
                "where a.playbook = 'renewal_alert' and o.is_customer_facing"
            )
        ).all()
    assert firings, "the session's marts have customer renewal email"
    for key, body in firings:
        plan = plans[key.split(":")[0]]
        is_offer = "plan adds" in body or "上位の" in body
        assert is_offer == (plan != "enterprise"), (plan, body)

    # The engine's own decision, on one row per plan rung (no database).
    config = load_playbooks(PLAYBOOKS, Renderer())
    play = next(p for p in config.playbooks if p.name == "renewal_alert")
    chosen = {}
    for plan in ("starter", "professional", "enterprise", "legacy_2019"):
        row = {"touch_tier": "tech_touch", "priority": "none", "plan": plan, **config.catalogue.ladder(plan)}
        chosen[plan] = next(r for r in play.rules if r.matches(row)).template
    assert chosen == {
        "starter": "renewal_upgrade_offer",
        "professional": "renewal_upgrade_offer",
        "enterprise": "renewal_checkin",
        "legacy_2019": "renewal_checkin",  # a plan the ladder does not know is never offered an upgrade
    }


def test_catalogue_mistakes_name_the_file_and_entry() -> None:
    with pytest.raises(ConfigError, match=r"playbooks\.yml: catalogue plan #2: each plan needs a code"):
        parse_catalogue({"plans": [{"code": "a"}, {"name": "B"}]}, "playbooks.yml")
    with pytest.raises(ConfigError, match=r"catalogue: unknown key 'plan'"):
        parse_catalogue({"plan": []}, "playbooks.yml")
    with pytest.raises(ConfigError, match=r"catalogue features api: expected a text or a mapping"):
        parse_catalogue({"features": {"api": ["API"]}}, "playbooks.yml")


def test_dates_read_as_people_write_them() -> None:
    assert long_date(date(2027, 2, 1), "ja") == "2027年2月1日"
    assert long_date("2027-02-01", "en") == "1 February 2027"


def test_a_churn_driver_per_event_type_reads_as_words_for_any_configured_type() -> None:
    assert word("driver", "log_events_login_30d", "en") != "log_events_login_30d"  # named in the locale
    # A type a team adds to the dbt var signal_event_types, with no text of its own yet.
    named = word("driver", "log_events_report_shared_30d", "en")
    assert "report shared" in named and "log_events" not in named
    assert "report shared" in word("driver", "log_events_report_shared_30d", "ja")
    assert word("driver", "no_such_driver", "en") == "no_such_driver"


# --------------------------------------------------------------------------
# The survey


def survey_messages(engine: sa.Engine) -> list[dict]:
    return [m for m in messages(engine, playbook="post_training_survey")]


def test_the_survey_collects_a_score_and_a_comment_once_and_the_marts_see_it(
    built_marts, fired_as, marts_engine
) -> None:
    settings = fired_as()
    surveys = survey_messages(marts_engine)
    assert surveys
    first = surveys[0]
    links = re.findall(r"http://127\.0\.0\.1:8080/survey/\S+", first["text_body"])
    assert len(links) == 11
    html_links = re.findall(r'href="(http://127\.0\.0\.1:8080/survey/[^"]+)"', first["html_body"])
    assert len(html_links) == 11
    client = TestClient(create_app(settings, marts_engine), base_url="http://127.0.0.1:8080")

    def answers() -> list[tuple]:
        with marts_engine.connect() as conn:
            return conn.execute(sa.text("select contact_id, training_id, score, comment from ops.survey_responses")).all()

    # A scanner's GET records nothing; the page confirms the chosen score.
    page = client.get(links[8])
    assert page.status_code == 200 and 'value="8" checked' in page.text
    assert answers() == []
    # Pressing send records the score (changed on the page) and the comment, once.
    assert client.post(links[8], data={"score": "9", "comment": "  More on dashboards, please. "}).status_code == 200
    again = client.post(links[3], data={"score": "3"})
    assert "already have your answer (9 out of 10)" in again.text
    recorded = answers()
    assert [(score, comment) for _, _, score, comment in recorded] == [(9, "More on dashboards, please.")]
    contact_id, training_id = recorded[0][:2]
    # A link altered by hand records nothing.
    assert client.post(links[0][:-3] + "abc").status_code == 400

    # The marts read the answer beside the landing file's: the survey does not fire again.
    # (The session's marts are as of MARTS_AS_OF, so the answer is dated the day before it.)
    with marts_engine.begin() as conn:
        conn.execute(sa.text("update ops.survey_responses set responded_at = :at"), {"at": f"{MARTS_AS_OF - timedelta(days=1)} 12:00+09"})
    db, _ = built_marts
    downstream = ["build", "--select", "int_survey_responses_unioned+", "--exclude", "test_type:unit"]
    run_dbt(db, settings, downstream, use_prefect=False)
    try:
        with marts_engine.connect() as conn:
            still_asked = conn.execute(
                sa.text("select count(*) from marts.audience_post_training_survey where contact_id = :c and training_id = :t"),
                {"c": contact_id, "t": training_id},
            ).scalar_one()
            comment = conn.execute(
                sa.text("select survey_type, score from marts.survey_comments where comment = 'More on dashboards, please.'")
            ).one()
        assert still_asked == 0
        assert tuple(comment) == ("training_feedback", 9)
    finally:  # the session's marts as the other tests know them
        with marts_engine.begin() as conn:
            conn.execute(sa.text("truncate ops.survey_responses"))
        run_dbt(db, settings, downstream, use_prefect=False)


def test_an_external_survey_tool_gets_the_contact_and_training_in_its_links(fired_as, marts_engine) -> None:
    fired_as(survey_url="https://forms.example.org/t?c={contact_id}&t={training_id}&s={score}")
    body = survey_messages(marts_engine)[0]["text_body"]
    links = re.findall(r"https://forms\.example\.org/t\?c=\S+", body)
    assert len(links) == 11 and all(re.fullmatch(r".*c=[^&]+&t=[^&]+&s=\d+", link) for link in links)
    assert links[10].endswith("&s=10")


def test_a_survey_url_with_an_unknown_placeholder_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"setting survey_url \(CSFLOW_SURVEY_URL\): .* unknown placeholder"):
        load_settings(Path("/nonexistent.yml"), {"CSFLOW_SURVEY_URL": "https://x.example.org/?who={email}"})


# --------------------------------------------------------------------------
# CSM email


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_every_csm_alert_speaks_the_team_language_and_carries_what_the_csm_needs(
    fired_as, marts_engine, locale: str
) -> None:
    fired_as(internal_locale=locale)
    alerts = [m for m in messages(marts_engine, is_customer_facing=False) if m["kind"] == "playbook"]
    assert {m["playbook"] for m in alerts} >= {"renewal_alert", "usage_decline"}
    # Words of the other language's templates (customers' names and comments may be in either).
    other = ("アカウント概要", "ヘルススコア", "結果をワンクリック", "タスクを登録") if locale == "en" else (
        "At a glance", "How did it go", "on your list", "Account page")
    for m in alerts:
        text = m["text_body"]
        assert not any(word in text for word in other), text
        if locale == "en":
            assert "Health:" in text and "ARR:" in text and "Talk to:" in text
        else:
            assert "ヘルススコア:" in text and "連絡先:" in text
        assert not any(code in text for code in CODES), text
        assert "/outcome/" in text and "/accounts/" in text
    renewal = next(m for m in alerts if m["playbook"] == "renewal_alert")
    assert re.search(r"Priority: (High|Medium|Low|None), (High|Low|Tech) touch|優先度: +[高中低]", renewal["text_body"])


def test_an_internal_locale_without_texts_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"setting internal_locale \(CSFLOW_INTERNAL_LOCALE\): 'fr' is not one of en, ja"):
        load_settings(Path("/nonexistent.yml"), {"CSFLOW_INTERNAL_LOCALE": "fr"})


def test_the_eml_of_an_alert_reads_in_the_team_language(fired_as, marts_engine) -> None:
    settings = fired_as(internal_locale="en")
    deliver_outbox(marts_engine, settings)
    alert = next(p for p in sorted(settings.outbox_dir.glob("*-playbook-*.eml")) if b"Reply-To" not in p.read_bytes())
    html, text = bodies(alert)
    assert "How did it go?" in html and "Open the account page" in html
