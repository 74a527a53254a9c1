"""The CSM workspace (`csflow serve`) through HTTP, in process: who sees what,
every change audited, links in email that act only on POST, unsubscribes the
next send honours, SendGrid's signed events and suppression lists.

The app is the real Starlette app over the session's built marts (real
PostgreSQL); sign-in links arrive as real .eml files of the file backend.
tests/test_browser.py walks the same pages in Chromium.
"""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from csflow.config import Settings
from csflow.links import outcome_links, unsubscribe_url
from csflow.web import create_app
from csflow.workspace import COMPONENTS, health_moves

SECRET = "workspace-secret-for-tests-0123456789"
LEAD = "lead@cs.example.org"
BOSS = "vp@cs.example.org"


def workspace_settings(built_marts, tmp_path: Path, **overrides: object) -> Settings:
    _, settings = built_marts
    values = {
        "database_url": settings.database_url,
        "state_dir": settings.state_dir,
        "playbooks_file": settings.playbooks_file,
        "outbox_dir": tmp_path / "outbox",
        "workspace_secret": SECRET,
        "unsubscribe_secret": "unsubscribe-secret-for-tests-0123456789",
        "team_leads": (LEAD,),
        "leadership": (BOSS,),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def site(built_marts, marts_engine, fired, tmp_path: Path):
    """(settings, engine, a client factory) over the session's marts with today's plays fired."""
    settings = workspace_settings(built_marts, tmp_path)
    app = create_app(settings, marts_engine)

    def client() -> TestClient:
        return TestClient(app, base_url="http://127.0.0.1:8080", follow_redirects=False)

    return settings, marts_engine, client


def bodies(path: Path) -> tuple[str, str]:
    """(html, text) of an .eml file."""
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return tuple(message.get_body(preferencelist=(kind,)).get_content() for kind in ("html", "plain"))


def latest_link(outbox: Path, pattern: str) -> str:
    """The newest .eml in the file outbox whose text has a link matching pattern."""
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        found = re.search(pattern, bodies(path)[1])
        if found:
            return found.group(0)
    raise AssertionError(f"no message in {outbox} links to {pattern}")


def sign_in(client: TestClient, settings: Settings, address: str) -> None:
    assert client.post("/signin", data={"email": address}).status_code == 200
    link = latest_link(settings.outbox_dir, r"http://127\.0\.0\.1:8080/signin/\S+")
    assert client.post(link).status_code == 303


def csrf(client: TestClient, path: str = "/tasks") -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text).group(1)


def one(engine: sa.Engine, sql: str, **params: object):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).one()


def csm_with_tasks(engine: sa.Engine, n: int = 2) -> list[str]:
    """Owners of open tasks, lower case, most tasks first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("select lower(owner_email) from ops.tasks group by 1 order by count(*) desc, 1 limit :n"),
                {"n": n},
            ).scalars()
        )


# --------------------------------------------------------------------------
# Signing in


def test_sign_in_by_a_single_use_link_and_the_same_answer_for_strangers(site) -> None:
    settings, engine, client = site
    csm = csm_with_tasks(engine, 1)[0]
    browser = client()
    stranger = browser.post("/signin", data={"email": "nobody@elsewhere.example"})
    known = browser.post("/signin", data={"email": csm.upper()})
    assert stranger.status_code == known.status_code == 200
    assert stranger.text == known.text  # nobody learns who has an account
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1  # only the CSM got a link
    link = latest_link(settings.outbox_dir, r"http://127\.0\.0\.1:8080/signin/\S+")

    assert browser.get("/tasks").headers["location"] == "/signin"
    confirm = browser.get(link)  # what a mail scanner does: the link is not used up
    assert confirm.status_code == 200 and "csflow_session" not in confirm.headers.get("set-cookie", "")
    signed_in = browser.post(link)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # http on loopback
    assert browser.get("/tasks").status_code == 200

    again = client().post(link)
    assert again.status_code == 400 and "does not work" in again.text
    assert one(engine, "select count(*) from ops.audit_log where action = 'signed in' and actor = :a", a=csm)[0] == 1


def test_sign_in_requests_are_rate_limited_per_address(site) -> None:
    _, engine, client = site
    browser = client()
    answers = [browser.post("/signin", data={"email": "someone@cs.example.org"}).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]


def test_a_trusted_proxy_header_names_the_user(built_marts, marts_engine, fired, tmp_path: Path) -> None:
    settings = workspace_settings(built_marts, tmp_path, workspace_trusted_header="X-Forwarded-Email")
    browser = TestClient(create_app(settings, marts_engine), follow_redirects=False)
    assert browser.get("/kpis", headers={"X-Forwarded-Email": BOSS}).status_code == 200
    assert browser.get("/kpis").headers["location"] == "/signin"
    assert browser.get("/kpis", headers={"X-Forwarded-Email": "stranger@else.example"}).status_code == 303


# --------------------------------------------------------------------------
# Who sees what


def test_a_csm_sees_their_own_and_every_other_id_is_not_found(site) -> None:
    settings, engine, client = site
    a, b = csm_with_tasks(engine)
    b_task, b_account = one(
        engine, "select task_id, account_id from ops.tasks where lower(owner_email) = :b limit 1", b=b
    )
    a_account = one(engine, "select account_id from marts.account_directory where owner_email = :a limit 1", a=a)[0]
    browser = client()
    sign_in(browser, settings, a)
    token = csrf(browser)

    assert browser.get(f"/accounts/{a_account}").status_code == 200
    for path in (f"/accounts/{b_account}", "/accounts/NO-SUCH-ACCOUNT", "/kpis", "/nothing-here"):
        page = browser.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text
    changed = browser.post(f"/tasks/{b_task}/complete", data={"csrf": token, "outcome": "won"})
    assert changed.status_code == 404
    assert browser.post(f"/tasks/{b_task}/reassign", data={"csrf": token, "owner": a}).status_code == 404
    assert one(engine, "select status, lower(owner_email) from ops.tasks where task_id = :t", t=b_task) == ("open", b)
    assert b_account not in browser.get("/renewals").text

    lead = client()
    sign_in(lead, settings, LEAD)
    assert lead.get(f"/accounts/{b_account}").status_code == 200
    assert f"/tasks/{b_task}/reassign" in lead.get("/tasks").text
    assert lead.get("/kpis").status_code == 200

    boss = client()
    sign_in(boss, settings, BOSS)
    assert boss.get(f"/accounts/{b_account}").status_code == 200  # leadership reads account pages
    assert boss.get("/kpis").status_code == 200
    assert boss.get("/tasks").status_code == 404
    assert (
        boss.post(f"/tasks/{b_task}/complete", data={"csrf": csrf(boss, "/kpis"), "outcome": "won"}).status_code == 404
    )


def test_complete_snooze_and_reassign_are_recorded_and_audited(site) -> None:
    settings, engine, client = site
    a, b = csm_with_tasks(engine)
    first, second, third = (
        r[0]
        for r in sa_rows(
            engine, "select task_id from ops.tasks where lower(owner_email) = :a order by task_id limit 3", a=a
        )
    )
    browser = client()
    sign_in(browser, settings, a)
    token = csrf(browser)

    done = browser.post(
        f"/tasks/{first}/complete", data={"csrf": token, "outcome": "won", "note": "signed the upgrade"}
    )
    assert done.headers["location"] == "/tasks?done=complete"
    assert one(engine, "select status, completed_by from ops.tasks where task_id = :t", t=first) == ("done", a)
    assert one(
        engine,
        "select p.outcome, p.outcome_note from ops.playbook_actions p join ops.tasks t using (action_id) where t.task_id = :t",
        t=first,
    ) == ("won", "signed the upgrade")

    browser.post(f"/tasks/{second}/snooze", data={"csrf": token, "until": "2999-01-01"})
    page = browser.get("/tasks").text
    assert f'id="task-{second}"' not in page and f'id="task-{first}"' not in page and "snoozed" in page
    bad_day = browser.post(f"/tasks/{third}/snooze", data={"csrf": token, "until": "2001-01-01"})
    assert bad_day.status_code == 400 and "after today" in bad_day.text
    forged = browser.post(f"/tasks/{third}/complete", data={"csrf": "0" * 64, "outcome": "lost"})
    assert forged.status_code == 403
    assert one(engine, "select status from ops.tasks where task_id = :t", t=third)[0] == "open"

    lead = client()
    sign_in(lead, settings, LEAD)
    assert lead.post(f"/tasks/{third}/reassign", data={"csrf": csrf(lead), "owner": b}).status_code == 303
    assert one(engine, "select owner_email from ops.tasks where task_id = :t", t=third)[0] == b
    nobody = lead.post(f"/tasks/{third}/reassign", data={"csrf": csrf(lead), "owner": "x@elsewhere.example"})
    assert nobody.status_code == 400

    audit = sa_rows(
        engine, "select actor, action, target_id from ops.audit_log where action <> 'signed in' order by audit_id"
    )
    assert [tuple(r) for r in audit] == [
        (a, "recorded outcome", str(one(engine, "select action_id from ops.tasks where task_id = :t", t=first)[0])),
        (a, "completed task", str(first)),
        (a, "snoozed task", str(second)),
        (LEAD, "reassigned task", str(third)),
    ]


def sa_rows(engine: sa.Engine, sql: str, **params: object) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


# --------------------------------------------------------------------------
# Outcome buttons in CSM alerts


def test_an_outcome_link_records_only_on_its_post_and_says_when_it_already_was(site) -> None:
    settings, engine, client = site
    action = one(engine, "select action_id from ops.playbook_actions where channel = 'csm_alert' limit 1")[0]
    links = outcome_links(settings, action)
    scanner = client()
    assert scanner.get(links["won"]).status_code == 200  # a scanner's fetch
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] is None

    first = client().post(links["won"])
    assert "Recorded: Won." in first.text
    later = client().post(links["lost"])
    assert "Recorded: Lost." in later.text and "It was Won before" in later.text
    same = client().post(links["lost"])
    assert "already recorded as Lost" in same.text
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] == "lost"

    token = links["won"].rsplit("/", 1)[1]
    payload, signature = token.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    for bad in (f"/outcome/{tampered}", f"/outcome/{token[:-3]}", "/outcome/garbage"):
        answer = client().post(bad)
        assert answer.status_code == 400 and "Nothing was recorded" in answer.text, bad
    other_purpose = unsubscribe_url(settings, "someone@example.com").rsplit("/", 1)[1]
    assert client().post(f"/outcome/{other_purpose}").status_code == 400
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] == "lost"
    actors = sa_rows(engine, "select actor from ops.audit_log where target_id = :a", a=str(action))
    assert len(actors) == 3 and all(a[0].startswith("link:") for a in actors)


def test_csm_alerts_carry_outcome_buttons_and_the_account_page(site) -> None:
    settings, engine, _ = site
    from csflow.mailers import deliver_outbox

    deliver_outbox(engine, settings)
    html, text = next(
        (html, text)
        for html, text in map(bodies, sorted(settings.outbox_dir.glob("*.eml")))
        if "Renewal coming up" in html
    )
    for body in (html, text):
        assert len(re.findall(r"http://127\.0\.0\.1:8080/outcome/[\w%.-]+", body)) == 4
        assert re.search(r"http://127\.0\.0\.1:8080/accounts/\w+", body)
    assert "csflow outcome" not in text


# --------------------------------------------------------------------------
# Unsubscribes


def test_unsubscribe_confirms_on_a_page_and_the_next_send_skips_the_address(site) -> None:
    settings, engine, client = site
    from csflow.mailers import deliver_outbox

    address, message_id = one(
        engine,
        "select lower(to_email), message_id from ops.outbox where is_customer_facing and status = 'pending' "
        "order by message_id limit 1",
    )
    url = unsubscribe_url(settings, address)
    page = client().get(url)
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert one(engine, "select count(*) from ops.suppressions where address = :a", a=address)[0] == 0  # GET: no change

    done = client().post(url)
    assert address in done.text and "undo" in done.text.lower()
    assert one(engine, "select reason from ops.suppressions where address = :a", a=address)[0] == "unsubscribe"
    deliver_outbox(engine, settings)
    assert one(engine, "select status from ops.outbox where message_id = :m", m=message_id)[0] == "skipped"

    undone = client().post(url + "/undo")
    assert "again" in undone.text
    assert one(engine, "select count(*) from ops.suppressions where address = :a", a=address)[0] == 0

    one_click = client().post(url, data={"List-Unsubscribe": "One-Click"})  # RFC 8058, the mail client's POST
    assert one_click.status_code == 200 and one_click.text == "unsubscribed"
    assert one(engine, "select source from ops.suppressions where address = :a", a=address)[0] == "link (one-click)"
    assert client().post(url[:-4] + "AAAA").status_code == 400


def test_customer_email_carries_one_click_unsubscribe_headers(site) -> None:
    settings, engine, _ = site
    from csflow.mailers import deliver_outbox

    deliver_outbox(engine, settings)
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in settings.outbox_dir.glob("*.eml")
    ]
    customer = [m for m in messages if m["List-Unsubscribe"]]
    assert customer
    for message in customer:
        assert re.fullmatch(r"<http://127\.0\.0\.1:8080/unsubscribe/[\w%.-]+>", message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --------------------------------------------------------------------------
# SendGrid: signed events in, suppression lists pulled


def test_signed_sendgrid_events_suppress_and_attach_to_messages(built_marts, marts_engine, fired, tmp_path) -> None:
    from tests.sendgrid_server import SendGridStub

    with SendGridStub() as stub:
        settings = workspace_settings(built_marts, tmp_path, sendgrid_webhook_public_key=stub.webhook_public_key)
        client = TestClient(create_app(settings, marts_engine))
        with marts_engine.begin() as conn:
            conn.execute(sa.text("update ops.outbox set status = 'sent', provider_message_id = 'SGMSG' || message_id"))
        message_id, address = one(marts_engine, "select message_id, lower(to_email) from ops.outbox order by 1 limit 1")
        events = [
            {
                "event": "delivered",
                "email": address,
                "timestamp": 1774900000,
                "sg_message_id": f"SGMSG{message_id}.filter01",
                "sg_event_id": "e1",
            },
            {
                "event": "open",
                "email": address,
                "timestamp": 1774900100,
                "sg_message_id": f"SGMSG{message_id}.filter01",
                "sg_event_id": "e2",
            },
            {
                "event": "bounce",
                "type": "bounce",
                "email": "gone@customer.example",
                "timestamp": 1774900000,
                "sg_event_id": "e3",
            },
            {
                "event": "bounce",
                "type": "blocked",
                "email": "busy@customer.example",
                "timestamp": 1774900000,
                "sg_event_id": "e4",
            },
            {"event": "spamreport", "email": "angry@customer.example", "timestamp": 1774900000, "sg_event_id": "e5"},
        ]
        body, headers = stub.signed_event_post(events)
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 200
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 200  # SendGrid's retry

        stored = sa_rows(marts_engine, "select event, message_id from ops.message_events order by occurred_at, event")
        assert len(stored) == 5  # once each, despite the retry
        assert [tuple(r) for r in stored if r.message_id is not None] == [
            ("delivered", message_id),
            ("open", message_id),
        ]
        suppressed = dict(
            sa_rows(marts_engine, "select address, reason from ops.suppressions where source like 'sendgrid%'")
        )
        assert suppressed == {"gone@customer.example": "bounce", "angry@customer.example": "spam_report"}

        refused = {
            "forged body": (body.replace(b"gone@", b"kept@"), headers),
            "unsigned": (body, {"Content-Type": "application/json"}),
            "stale": stub.signed_event_post(events, timestamp=1774900000),
            "bad signature": (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}),
        }
        for name, (payload, given) in refused.items():
            answer = client.post("/webhooks/sendgrid", content=payload, headers=given)
            assert answer.status_code == 403, name
        assert "kept@customer.example" not in dict(
            sa_rows(marts_engine, "select address, reason from ops.suppressions")
        )

    no_key = TestClient(create_app(workspace_settings(built_marts, tmp_path), marts_engine))
    assert no_key.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 403


def test_send_pulls_sendgrids_suppression_lists_first(built_marts, marts_engine, fired, tmp_path, monkeypatch) -> None:
    from csflow.mailers import deliver_outbox
    from tests.sendgrid_server import SendGridStub

    address = one(
        marts_engine, "select lower(to_email) from ops.outbox where is_customer_facing order by message_id limit 1"
    )[0]
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    with SendGridStub() as stub:
        stub.group_suppressions[7] = [address.upper()]
        stub.global_unsubscribes = [f"global{i}@customer.example" for i in range(1203)]  # three pages
        settings = workspace_settings(
            built_marts,
            tmp_path,
            email_backend="sendgrid",
            sendgrid_host=stub.url,
            sendgrid_asm_group_id=7,
            base_url="https://workspace.acme-saas.co.jp",
        )
        report = deliver_outbox(marts_engine, settings)
        sent_to = {body["personalizations"][0]["to"][0]["email"].lower() for body in stub.accepted}
    assert address not in sent_to
    assert report.skipped >= 1
    reasons = dict(sa_rows(marts_engine, "select address, source from ops.suppressions where source like 'sendgrid%'"))
    assert reasons[address] == "sendgrid:suppression list" and len(reasons) == 1204


# --------------------------------------------------------------------------
# Account pages


def test_what_moved_the_score_adds_up_to_the_scores_change() -> None:
    weights = {c: w for (c, _), w in zip(COMPONENTS, (30, 20, 15, 15, 10, 10), strict=True)}
    before = {c: 50.0 for c, _ in COMPONENTS} | {"marketing_engagement_score": None}
    now = {c: 50.0 for c, _ in COMPONENTS} | {"usage_trend_score": 20.0, "nps_score": 90.0}

    def score(row: dict) -> float:
        present = {c: w for c, w in weights.items() if row.get(c) is not None}
        return sum(w * row[c] for c, w in present.items()) / sum(present.values())

    moves = health_moves(now, before, weights)
    assert sum(m["points"] for m in moves) == pytest.approx(score(now))
    assert sum(m["change"] for m in moves) == pytest.approx(score(now) - score(before))
    assert next(m for m in moves if m["component"] == "usage_trend_score")["change"] < 0


def test_the_account_page_shows_health_history_usage_contacts_and_history(site) -> None:
    settings, engine, client = site
    account, owner = one(
        engine,
        "select p.account_id, a.owner_email from ops.playbook_actions p join marts.account_directory a using (account_id) "
        "where p.channel = 'csm_alert' order by p.action_id limit 1",
    )
    browser = client()
    sign_in(browser, settings, owner)
    page = browser.get(f"/accounts/{account}").text
    for expected in ("Usage trend", "Adoption breadth", "Communication history", "Contacts", "<svg", "Renews on"):
        assert expected in page, expected
    fired = sa_rows(engine, "select playbook from ops.playbook_actions where account_id = :a", a=account)
    assert all(f[0] in page for f in fired)


def test_pages_follow_the_teams_locale(built_marts, marts_engine, fired, tmp_path) -> None:
    settings = workspace_settings(built_marts, tmp_path, internal_locale="ja")
    browser = TestClient(create_app(settings, marts_engine), base_url=settings.base_url, follow_redirects=False)
    sign_in(browser, settings, LEAD)
    assert "チームの未完了タスク" in browser.get("/tasks").text
    assert "KPI(直近12か月)" in browser.get("/kpis").text
    customer = TestClient(create_app(settings, marts_engine))
    link = unsubscribe_url(settings, "someone@customer.example")
    assert "配信を停止する" in customer.get(link, headers={"Accept-Language": "ja,en;q=0.5"}).text
    assert "Unsubscribe" in customer.get(link, headers={"Accept-Language": "en-US"}).text


def test_csflow_serve_answers_on_its_port(built_marts, marts_engine, fired, tmp_path: Path) -> None:
    """The command itself, as a user starts it: a process that serves until it is stopped."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, settings = built_marts
    env = {
        **os.environ,
        "CSFLOW_DATABASE_URL": settings.database_url,
        "CSFLOW_STATE_DIR": str(settings.state_dir),
        "CSFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
        "CSFLOW_BASE_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "csflow.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok":
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "csflow serve did not answer"
                time.sleep(0.2)
        signin = httpx.get(f"http://127.0.0.1:{port}/signin")
        assert signin.status_code == 200 and "Sign in" in signin.text
        assert httpx.get(f"http://127.0.0.1:{port}/tasks").status_code == 303
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"csflow workspace on http://127.0.0.1:{port}" in output
