"""The CSM workspace in a real browser: Debian's Chromium driven by Playwright,
against `csflow serve`'s app on a real port, over the session's built marts.

Links come from the .eml files the pipeline's file backend wrote, as a CSM's
mail client would show them. On a machine without Chromium these tests skip
and say so; CI (CSFLOW_BROWSER_TESTS=required, set by .ci/run) fails instead.
Screenshots go to $CSFLOW_SCREENSHOTS when set (to look at them), else to the
test's temporary folder.
"""

from __future__ import annotations

import email
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from csflow.mailers import deliver_outbox
from csflow.outbox import Message, queue_messages
from csflow.playbooks import run_playbooks
from csflow.web import create_app
from tests.conftest import MARTS_AS_OF
from tests.test_workspace import LEAD, csm_with_tasks, one, workspace_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: `apt-get install chromium fonts-noto-cjk` to run the browser tests"
        if os.environ.get("CSFLOW_BROWSER_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The workspace app under uvicorn on a free port, in a thread."""

    def __init__(self, settings, engine) -> None:
        self.settings, self.engine = settings, engine
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def port(self) -> int:
        return int(self.settings.base_url.rsplit(":", 1)[1])

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the workspace did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve(built_marts, marts_engine, tmp_path: Path):
    """Start the workspace (settings overridable) over the marts, with the day's plays fired
    by the same settings (so the links in their email lead to this server)."""
    running: list[Served] = []

    def start(**overrides: object) -> Served:
        settings = workspace_settings(built_marts, tmp_path, base_url=f"http://127.0.0.1:{_free_port()}", **overrides)
        run_playbooks(marts_engine, settings, MARTS_AS_OF, gate_open=True)
        served = Served(settings, marts_engine).__enter__()
        running.append(served)
        return served

    yield start
    for served in running:
        served.__exit__()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CSFLOW_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def emails(outbox: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(outbox.glob("*.eml"))]


def html_links(message: email.message.EmailMessage, pattern: str) -> list[str]:
    html = message.get_body(preferencelist=("html",)).get_content()
    return [link for link in re.findall(r'href="([^"]+)"', html) if re.search(pattern, link)]


def sign_in(page, served: Served, address: str) -> None:
    """Ask for a link on the page, open it from the .eml the outbox wrote, press the button."""
    page.goto(served.settings.link("signin"))
    page.fill("input[name=email]", address)
    page.click("button[type=submit]")
    page.wait_for_selector("[role=status]")
    link = html_links(emails(served.settings.outbox_dir)[-1], "/signin/")[0]
    page.goto(link)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_a_csm_signs_in_from_the_email_and_completes_and_snoozes_tasks(chromium, serve, shots) -> None:
    served = serve()
    engine = served.engine
    csm, other = csm_with_tasks(engine)
    mine = [
        r[0]
        for r in rows(
            engine, "select task_id from ops.tasks where lower(owner_email) = :a order by due_date, task_id", a=csm
        )
    ]
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, served, csm)
    assert page.url.endswith("/tasks")
    assert page.locator(f"#task-{mine[0]}").is_visible()
    page.screenshot(path=str(shots / "tasks.en.png"), full_page=True)
    assert no_sideways_scroll(page)

    row = page.locator(f"#task-{mine[0]}")
    row.locator("select[name=outcome]").select_option("won")
    row.locator("input[name=note]").fill("renewed with two more seats")
    row.locator("button", has_text="Complete").click()
    page.wait_for_selector("text=Task completed")
    assert one(engine, "select status from ops.tasks where task_id = :t", t=mine[0])[0] == "done"
    assert one(
        engine,
        "select p.outcome, p.outcome_note from ops.playbook_actions p join ops.tasks t using (action_id) where t.task_id = :t",
        t=mine[0],
    ) == ("won", "renewed with two more seats")

    row = page.locator(f"#task-{mine[1]}")
    row.locator("input[name=until]").fill("2999-01-01")
    row.locator("button", has_text="Snooze").click()
    page.wait_for_selector("text=Task snoozed")
    assert page.locator(f"#task-{mine[1]}").count() == 0
    assert str(one(engine, "select snoozed_until from ops.tasks where task_id = :t", t=mine[1])[0]) == "2999-01-01"

    # Typing another CSM's account and task addresses: not found, and nothing there changes.
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    their_task, their_account = one(
        engine, "select task_id, account_id from ops.tasks where lower(owner_email) = :b limit 1", b=other
    )
    for path in (f"/accounts/{their_account}", f"/tasks/{their_task}"):
        response = page.goto(served.settings.link(path))
        assert response.status == 404 and page.locator("h1", has_text="Not found").is_visible(), path
    answer = page.evaluate(
        """async ([url, csrf]) => (await fetch(url, {method: 'POST', body: new URLSearchParams({csrf, outcome: 'won'})})).status""",
        [served.settings.link(f"tasks/{their_task}/complete"), token],
    )
    assert answer == 404
    assert one(engine, "select status from ops.tasks where task_id = :t", t=their_task)[0] == "open"


def test_a_team_lead_reassigns_a_task(chromium, serve) -> None:
    served = serve()
    engine = served.engine
    csm, other = csm_with_tasks(engine)
    task = one(engine, "select task_id from ops.tasks where lower(owner_email) = :a order by task_id limit 1", a=csm)[0]
    page = chromium.new_page()
    sign_in(page, served, LEAD)
    page.goto(served.settings.link(f"tasks/{task}"))
    page.locator("select[name=owner]").select_option(other)
    page.locator("button", has_text="Reassign").click()
    page.wait_for_selector("text=Task reassigned")
    assert one(engine, "select owner_email from ops.tasks where task_id = :t", t=task)[0] == other
    assert one(engine, "select actor, action from ops.audit_log where target_id = :t", t=str(task)) == (
        LEAD,
        "reassigned task",
    )


def test_an_outcome_button_in_a_real_alert_email_records_only_when_pressed(chromium, serve, shots) -> None:
    served = serve()
    engine = served.engine
    deliver_outbox(engine, served.settings)
    alert = next(m for m in emails(served.settings.outbox_dir) if html_links(m, "/outcome/"))
    buttons = html_links(alert, "/outcome/")
    assert len(buttons) == 4
    action = int(re.search(r"· #(\d+)", alert.get_body(preferencelist=("html",)).get_content()).group(1))

    for link in buttons:  # a mail scanner fetches every link in the message
        assert httpx.get(link).status_code == 200
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] is None

    page = chromium.new_page()
    page.goto(buttons[0])
    page.screenshot(path=str(shots / "outcome-confirm.en.png"))
    page.locator("button", has_text="Record it").click()
    page.wait_for_selector("text=Recorded: Won.")
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] == "won"

    tampered = re.sub(r"/outcome/(\w)", lambda m: "/outcome/" + ("B" if m.group(1) != "B" else "C"), buttons[1])
    response = page.goto(tampered)
    assert response.status == 400 and page.locator("h1", has_text="Nothing was recorded").is_visible()
    assert one(engine, "select outcome from ops.playbook_actions where action_id = :a", a=action)[0] == "won"


def test_a_customer_unsubscribes_from_the_email_and_the_next_send_skips_them(chromium, serve, shots) -> None:
    served = serve()
    engine = served.engine
    deliver_outbox(engine, served.settings)
    customer = next(m for m in emails(served.settings.outbox_dir) if m["List-Unsubscribe"])
    address = customer["To"].addresses[0].addr_spec.lower()
    link = customer["List-Unsubscribe"].strip("<>")
    assert html_links(customer, "/unsubscribe/") == [link]

    page = chromium.new_page(locale="ja-JP")
    page.goto(link)
    page.screenshot(path=str(shots / "unsubscribe.ja.png"))
    assert one(engine, "select count(*) from ops.suppressions where address = :a", a=address)[0] == 0
    page.locator("button", has_text="配信を停止する").click()
    page.wait_for_selector("text=配信を停止しました")
    assert one(engine, "select reason from ops.suppressions where address = :a", a=address)[0] == "unsubscribe"

    with engine.begin() as conn:
        queue_messages(
            conn,
            [
                Message(
                    dedupe_key="next-campaign",
                    kind="playbook",
                    to_email=address.upper(),
                    subject="Next time",
                    html_body="<p>hello</p>",
                    text_body="hello",
                    is_customer_facing=True,
                )
            ],
        )
    report = deliver_outbox(engine, served.settings)
    assert report.skipped == 1 and report.sent == 0
    assert one(engine, "select status from ops.outbox where dedupe_key = 'next-campaign'")[0] == "skipped"


def test_japanese_pages_render_for_a_japanese_team(chromium, serve, shots) -> None:
    served = serve(internal_locale="ja")
    engine = served.engine
    account = one(
        engine,
        "select p.account_id from ops.playbook_actions p join marts.account_directory a using (account_id) "
        "where p.channel = 'csm_alert' and a.region = 'JP' order by p.action_id limit 1",
    )[0]
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    sign_in(page, served, LEAD)
    for path, heading in (
        ("tasks", "チームの未完了タスク"),
        (f"accounts/{account}", None),
        ("renewals", "6か月以内に更新を迎える契約"),
        ("kpis", "KPI(直近12か月)"),
    ):
        response = page.goto(served.settings.link(path))
        assert response.status == 200, path
        if heading:
            assert page.locator("h1").inner_text() == heading
        assert page.locator("html").get_attribute("lang") == "ja"
        assert no_sideways_scroll(page), path
        page.screenshot(path=str(shots / f"{path.split('/')[0]}.ja.png"), full_page=True)
    page.goto(served.settings.link(f"accounts/{account}"))
    assert page.locator("text=スコアの内訳").is_visible() and page.locator("svg.chart").count() == 2
    narrow = chromium.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    narrow.goto(served.settings.link("signin"))
    assert no_sideways_scroll(narrow)
    narrow.screenshot(path=str(shots / "signin.phone.ja.png"))


def rows(engine: sa.Engine, sql: str, **params: object) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def test_a_customer_answers_the_survey_from_the_email_on_a_phone(chromium, serve, shots) -> None:
    served = serve(company_name="Acme SaaS K.K.")
    engine = served.engine
    deliver_outbox(engine, served.settings)
    survey = next(m for m in emails(served.settings.outbox_dir) if html_links(m, "/survey/"))
    links = html_links(survey, "/survey/")
    assert len(links) == 11

    page = chromium.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
    page.goto(links[7])  # the button "7" in the email
    page.screenshot(path=str(shots / "survey.phone.png"), full_page=True)
    assert page.locator("header .brand").inner_text() == "Acme SaaS K.K."
    assert page.locator("input[name=score][value='7']").is_checked()
    assert no_sideways_scroll(page)
    assert one(engine, "select count(*) from ops.survey_responses")[0] == 0  # opening the link records nothing
    page.locator("label", has_text="10").click()  # changes their mind on the page
    page.fill("textarea[name=comment]", "Great trainer. More on the API next time.")
    page.locator("button", has_text="Send my answer").click()
    page.wait_for_selector("text=your answer (10 out of 10) is recorded")
    page.screenshot(path=str(shots / "survey.thanks.png"))
    assert one(engine, "select score, comment from ops.survey_responses") == (10, "Great trainer. More on the API next time.")

    page.goto(links[2])  # a second click in the email changes nothing
    page.wait_for_selector("text=We already have your answer (10 out of 10)")
    assert one(engine, "select count(*) from ops.survey_responses")[0] == 1


def test_the_outbox_index_lists_every_message_by_kind_and_play_and_filters_as_you_type(chromium, serve, shots) -> None:
    served = serve()
    deliver_outbox(served.engine, served.settings)
    page = chromium.new_page()
    page.goto((served.settings.outbox_dir / "index.html").resolve().as_uri())
    headers = page.locator("#messages th").all_inner_texts()
    assert headers == ["time", "kind", "play", "to", "status", "subject", "raw"]
    rows = page.locator("#messages tr + tr")
    total = rows.count()
    assert total == len(list(served.settings.outbox_dir.glob("*.eml")))
    page.fill("#filter", "usage_decline")
    visible = [r for r in rows.all() if r.is_visible()]
    assert 0 < len(visible) < total
    assert all(r.locator("td").nth(2).inner_text() == "usage_decline" for r in visible)
    page.fill("#filter", "playbook usage_decline no-such-word")
    assert not any(r.is_visible() for r in rows.all())
    page.fill("#filter", "")
    assert sum(r.is_visible() for r in rows.all()) == total
    page.screenshot(path=str(shots / "outbox-index.png"))


def offline_page(chromium):
    """A page that may load files only: every request to the web is refused and recorded."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.web_requests, page.errors = [], []

    def refuse_the_web(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            page.web_requests.append(route.request.url)
            route.abort()

    page.route("**/*", refuse_the_web)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    return page


def test_data_docs_and_dbt_docs_render_offline(chromium, built_marts, tmp_path: Path, shots) -> None:
    from csflow.dbt import run_dbt
    from csflow.validation import build_data_docs, run_validation

    db, settings = built_marts
    report = run_validation(db, MARTS_AS_OF, "offline", store=False)
    index = build_data_docs(report, tmp_path / "data_docs")
    page = offline_page(chromium)
    page.goto(index.as_uri())
    table = page.locator("table[id$='body-table']").first
    rows = table.locator("tbody tr")
    assert rows.count() == len(report.gx_results)  # drawn by the local table script, not an empty CDN table
    assert "Font Awesome" in page.evaluate("getComputedStyle(document.querySelector('i.fas'), '::before').fontFamily")
    assert page.evaluate("getComputedStyle(document.querySelector('.nav-tabs')).borderBottomStyle") == "solid"
    page.fill("input[type=search]", "raw_contracts")
    assert sum(r.is_visible() for r in rows.all()) == 1
    page.screenshot(path=str(shots / "data-docs-index.png"))
    rows.first.click()
    page.wait_for_selector("text=Overview")
    assert "/validations/raw_contracts/" in page.url
    page.screenshot(path=str(shots / "data-docs-validation.png"))
    assert page.web_requests == [] and page.errors == []

    run_dbt(db, settings, ["docs", "generate", "--static"], use_prefect=False)
    page = offline_page(chromium)
    dbt_docs = (settings.state_dir / "dbt" / "target" / "static_index.html").resolve().as_uri()
    page.goto(dbt_docs + "#!/model/model.csflow.account_health")
    page.get_by_text("health_band", exact=True).first.wait_for()  # the model's columns, from the inline catalog
    page.screenshot(path=str(shots / "dbt-docs.png"))
    assert page.web_requests == []  # (dbt's own page logs errors for icons it never renders; not ours to fix)
