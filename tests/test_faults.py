"""Real faults, one test (or more) per finding of the trust review: a wrong
password, a provider that fails or hangs, a sender killed mid-batch or cut off
from its database, hostile bytes in landing files and outcomes, two runs at
once, markup in names, script in Data Docs, credentials in clear text.

Everything runs against real servers: the embedded PostgreSQL, aiosmtpd with
authentication, the SendGrid stand-in (tests/sendgrid_server.py) with latency,
500s, 429s and dropped connections, and `csflow` in subprocesses.
"""

from __future__ import annotations

import dataclasses
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from typer.testing import CliRunner

from csflow import tokens
from csflow.casting import NUL_REASON, RANGE_REASON
from csflow.cli import app
from csflow.config import ConfigError, Settings
from csflow.dbt import run_dbt
from csflow.ingest import ingest_folder
from csflow.mailers import FileMailer, SendGridMailer, SmtpMailer
from csflow.outbox import (
    SENDER_LOCK_CLASS,
    Message,
    RetryPolicy,
    deliver,
    outbox_counts,
    queue_messages,
)
from csflow.suppressions import suppress
from csflow.warehouse import Warehouse, WarehouseBusy
from tests.conftest import write_csv
from tests.sendgrid_server import Scripted, SendGridStub

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01)
USER, PASSWORD = "csflow", "s3cret"
runner = CliRunner()


def queue(engine: sa.Engine, n: int, *, customer: bool = False, start: int = 0, kind: str = "alert") -> None:
    with engine.begin() as conn:
        queue_messages(
            conn,
            [
                Message(
                    dedupe_key=f"fault:{i}",
                    kind=kind,
                    to_email=f"person{i}@example.com",
                    subject=f"Message {i}",
                    html_body=f"<p>{i}</p>",
                    text_body=str(i),
                    action_id=1000 + i,
                    is_customer_facing=customer,
                )
                for i in range(start, start + n)
            ],
        )


def statuses(engine: sa.Engine) -> dict[str, int]:
    return {k: v for k, v in outbox_counts(engine).items() if v}


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it accepted, with each envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_with_login():
    """aiosmtpd asking for a login (allowed without TLS: it listens on loopback)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False, auth_required=True
    )
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def stub():
    with SendGridStub() as server:
        yield server


def smtp_settings(port: int, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_username": USER, "smtp_password": PASSWORD,
        "from_email": "cs@example.com", "email_timeout_seconds": 2,
    }
    return Settings(**{**values, **kw})


# --------------------------------------------------------------------------
# 1. Failures that certainly sent nothing are never unknown


def test_a_wrong_smtp_password_fails_a_few_and_leaves_the_rest_pending(engine, smtp_with_login) -> None:
    inbox, port = smtp_with_login
    queue(engine, 12)
    report = deliver(engine, SmtpMailer(smtp_settings(port, smtp_password="wrong")), policy=FAST, concurrency=3)
    assert report.unknown_total == 0 and inbox.messages == []
    # The fifth refusal stops the sender; the other two slots finish the call they were in.
    assert 5 <= report.failed <= 7 and "5 failures in a row (login refused)" in report.stopped
    assert statuses(engine) == {"failed": report.failed, "pending": 12 - report.failed}
    assert "login" in (report.problem() or "")
    # The right password, and the failed ones requeued by hand: everything leaves, once.
    from csflow.outbox import requeue_failed

    assert requeue_failed(engine) == report.failed
    assert deliver(engine, SmtpMailer(smtp_settings(port)), policy=FAST).sent == 12
    assert sorted(rcpt[0] for rcpt, _ in inbox.messages) == sorted(f"person{i}@example.com" for i in range(12))


def test_starttls_against_a_server_without_tls_is_failed_not_unknown(engine, smtp_with_login) -> None:
    _, port = smtp_with_login
    queue(engine, 2)
    report = deliver(engine, SmtpMailer(smtp_settings(port, smtp_starttls=True)), policy=FAST)
    assert report.unknown_total == 0 and report.failed == 2
    with engine.connect() as conn:
        errors = conn.execute(sa.text("select last_error from ops.outbox")).scalars().all()
    assert all("STARTTLS" in e for e in errors)


def test_a_server_that_never_greets_times_out_as_not_sent(engine) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    try:
        queue(engine, 2)
        settings = Settings(smtp_host="127.0.0.1", smtp_port=silent.getsockname()[1], email_timeout_seconds=1)
        report = deliver(engine, SmtpMailer(settings), policy=FAST)
    finally:
        silent.close()
    assert report.unknown_total == 0 and statuses(engine) == {"pending": 2}
    assert "cannot connect" in report.stopped


def test_a_sendgrid_connect_timeout_is_not_sent(engine) -> None:
    # TEST-NET-1 (RFC 5737) is never routed: the connection cannot complete.
    settings = Settings(sendgrid_host="http://192.0.2.1:81", allow_insecure_transport=True, email_timeout_seconds=1)
    queue(engine, 2)
    report = deliver(engine, SendGridMailer(settings, "SG.x"), policy=FAST)
    assert report.unknown_total == 0 and statuses(engine) == {"pending": 2}


def test_a_message_that_cannot_be_built_fails_without_reaching_any_backend(engine, stub, smtp_with_login, tmp_path) -> None:
    inbox, port = smtp_with_login
    backends = [
        FileMailer(tmp_path / "out", "cs@example.com"),
        SmtpMailer(smtp_settings(port)),
        SendGridMailer(Settings(sendgrid_host=stub.url), stub.api_key),
    ]
    for n, mailer in enumerate(backends):
        with engine.begin() as conn:
            conn.execute(sa.text("truncate ops.outbox cascade"))
        queue(engine, 1, start=n)
        with engine.begin() as conn:  # written around ingest's address check
            conn.execute(sa.text("update ops.outbox set to_email = 'a@x.com, evil@y.com'"))
        report = deliver(engine, mailer, policy=FAST)
        assert (report.failed, report.unknown_total) == (1, 0), mailer.name
    assert stub.requests == 0 and inbox.messages == [] and not list((tmp_path / "out").glob("*.eml"))


# --------------------------------------------------------------------------
# 2. A sender killed mid-batch leaves at most one unknown message per slot


def _csflow(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """`csflow ARGS` in a process of its own (in cwd, so no csflow.yml of the checkout applies)."""
    return subprocess.Popen(
        [sys.executable, "-m", "csflow.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_sigkill_mid_batch_leaves_at_most_one_unknown_per_slot(warehouse: Warehouse, engine, stub, tmp_path) -> None:
    queue(engine, 40)
    stub.latency = 0.4
    env = {
        "CSFLOW_DATABASE_URL": warehouse.url.render_as_string(hide_password=False),
        "CSFLOW_EMAIL_BACKEND": "sendgrid",
        "CSFLOW_SENDGRID_HOST": stub.url,
        "SENDGRID_API_KEY": stub.api_key,
        "CSFLOW_DELIVERY_CONCURRENCY": "4",
    }
    sender = _csflow("send", env=env, cwd=tmp_path)
    _wait_for(lambda: stub.requests >= 8)
    sender.send_signal(signal.SIGKILL)
    sender.wait()
    _wait_for(lambda: stub.in_flight == 0)  # the provider finishes what it was asked
    stub.latency = 0
    report = deliver(engine, SendGridMailer(Settings(sendgrid_host=stub.url), stub.api_key), policy=FAST, concurrency=4)
    assert 1 <= len(report.unknown) <= 4  # one per slot at most, the ones in flight
    accepted = stub.accepted_action_ids()
    assert len(accepted) == len(set(accepted)) == 40  # nothing lost, nothing twice
    with engine.connect() as conn:
        unknown = conn.execute(sa.text("select action_id from ops.outbox where status = 'unknown'")).scalars().all()
    assert {str(a) for a in unknown} <= set(accepted)  # each one the provider was really being asked to take
    assert statuses(engine) == {"sent": 40 - len(unknown), "unknown": len(unknown)}


# --------------------------------------------------------------------------
# 3. A sender that lost its database session stops sending, and records what it sent


def test_a_sender_cut_off_from_its_database_records_what_it_sent_and_stops(engine, stub) -> None:
    queue(engine, 20)
    stub.latency = 0.5
    first_report: list[Any] = []
    first = threading.Thread(
        target=lambda: first_report.append(
            deliver(engine, SendGridMailer(Settings(sendgrid_host=stub.url), stub.api_key), policy=FAST, concurrency=2)
        )
    )
    first.start()
    _wait_for(lambda: stub.in_flight == 2)
    with engine.begin() as conn:  # an administrator kills the sender's sessions (its locks go with them)
        killed = conn.execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_locks "
                "where locktype = 'advisory' and classid = :c and granted"
            ),
            {"c": SENDER_LOCK_CLASS},
        ).scalars().all()
    assert len(killed) == 2
    stub.latency = 0.0
    # A second sender finds the first one's claims without a lock: unknown, for now.
    second = deliver(engine, SendGridMailer(Settings(sendgrid_host=stub.url), stub.api_key), policy=FAST)
    first.join(timeout=30)
    assert len(second.unknown) == 2
    accepted = stub.accepted_action_ids()
    assert len(accepted) == len(set(accepted)) == 20
    # The first sender recorded the answers it got: no delivered message is left unknown.
    assert statuses(engine) == {"sent": 20}


# --------------------------------------------------------------------------
# 4. Outages are not silent: non-zero exits and a failed flow run


def test_an_outage_stops_the_sender_and_the_send_command_fails_with_one_line(
    warehouse: Warehouse, engine, stub, monkeypatch, tmp_path: Path
) -> None:
    queue(engine, 10)
    stub.then(*[Scripted(500)] * 100)
    monkeypatch.setenv("CSFLOW_DATABASE_URL", warehouse.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CSFLOW_EMAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("CSFLOW_SENDGRID_HOST", stub.url)
    monkeypatch.setenv("SENDGRID_API_KEY", stub.api_key)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["send"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("csflow:")]
    assert len(lines) == 1 and "delivery incomplete: stopped early: 5 failures in a row (HTTP 500)" in lines[0]
    # The stop saves the tries: without it the retry policy allows 5 per message (50); with it,
    # the slots in flight finish their try (one may have retried within its first second of
    # backoff) and nothing more is asked. Nothing lost: the next run resumes.
    assert 5 <= stub.requests < 20 and statuses(engine) == {"pending": 10}


def test_an_outage_fails_the_flow_run_so_the_failure_alert_fires(
    prefect_harness, warehouse: Warehouse, engine, stub, monkeypatch, tmp_path
) -> None:
    from flows.send_digests import send_digests

    queue(engine, 3, kind="digest")
    stub.then(*[Scripted(503)] * 100)
    for name, value in {
        "CSFLOW_DATABASE_URL": warehouse.url.render_as_string(hide_password=False),
        "CSFLOW_EMAIL_BACKEND": "sendgrid",
        "CSFLOW_SENDGRID_HOST": stub.url,
        "SENDGRID_API_KEY": stub.api_key,
        "CSFLOW_STATE_DIR": str(tmp_path / "state"),
        "CSFLOW_CONFIG": str(tmp_path / "csflow.yml"),
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "csflow.yml").write_text("timezone: UTC\n", encoding="utf-8")
    state = send_digests(csm_digests=False, kpi_report=False, return_state=True)
    assert state.is_failed()
    assert "delivery incomplete" in str(state.message)
    with engine.connect() as conn:  # the hook queued the data team's alert (the provider is down, so it waits too)
        alert = conn.execute(sa.text("select subject from ops.outbox where kind = 'alert'")).scalar_one()
    assert "send_digests failed" in alert


# --------------------------------------------------------------------------
# 5. Sending at the speed of the network: slots really overlap


def test_concurrent_slots_overlap_and_still_send_each_message_once(engine, stub) -> None:
    queue(engine, 24)
    stub.latency = 0.2
    report = deliver(engine, SendGridMailer(Settings(sendgrid_host=stub.url), stub.api_key), policy=FAST, concurrency=8)
    assert report.sent == 24 and stub.max_in_flight == 8
    assert sorted(stub.accepted_action_ids()) == sorted(str(1000 + i) for i in range(24))


# --------------------------------------------------------------------------
# 6. One recipient, always


def test_address_fields_cannot_carry_extra_recipients(engine, smtp_with_login, tmp_path: Path) -> None:
    inbox, port = smtp_with_login
    land = tmp_path / "landing"
    write_csv(
        land,
        "accounts.csv",
        """
        account_id,account_name,owner_email,created_date
        A1,One,csm@example.com,2024-01-01
        A2,Two,"csm@example.com, evil@example.net",2024-01-01
        """,
    )
    write_csv(
        land,
        "contacts.csv",
        """
        contact_id,account_id,email
        C1,A1,buyer@example.com
        C2,A1,"a@example.com>, <evil@example.net"
        C3,A1,"a@example.com, evil@example.net"
        """,
    )
    ingest_folder(engine, land)
    with engine.connect() as conn:
        rejected = conn.execute(
            sa.text("select entity, line, column_name from raw.current_load_rejects order by entity, line")
        ).all()
        emails = conn.execute(sa.text("select email from raw.contacts")).scalars().all()
    assert [tuple(r) for r in rejected] == [("accounts", 3, "owner_email"), ("contacts", 3, "email"), ("contacts", 4, "email")]
    assert emails == ["buyer@example.com"]
    # And the envelope names exactly the message's one recipient.
    queue(engine, 1)
    assert deliver(engine, SmtpMailer(smtp_settings(port)), policy=FAST).sent == 1
    assert [rcpt for rcpt, _ in inbox.messages] == [["person0@example.com"]]


# --------------------------------------------------------------------------
# 7. Unsubscribes: per address, checked again at send time, signed links


def test_an_address_suppressed_after_queueing_is_skipped_at_send_time(engine, tmp_path: Path) -> None:
    queue(engine, 3, customer=True)
    with engine.begin() as conn:
        suppress(conn, "Person1@Example.com", "unsubscribe", "test")
    report = deliver(engine, FileMailer(tmp_path / "out", "cs@example.com"), policy=FAST)
    assert (report.sent, report.skipped) == (2, 1)
    with engine.connect() as conn:
        skipped = conn.execute(sa.text("select to_email, last_error from ops.outbox where status = 'skipped'")).one()
    assert skipped.to_email == "person1@example.com" and "suppressed (unsubscribe)" in skipped.last_error
    assert not list((tmp_path / "out").glob("*message-1*"))


def test_a_second_contact_record_with_an_unsubscribed_address_gets_nothing(built_marts, marts_engine) -> None:
    from csflow.playbooks import run_playbooks

    _, settings = built_marts
    with marts_engine.begin() as conn:
        first = conn.execute(
            sa.text(
                "select c.contact_id, c.account_id, c.email from raw.contacts c "
                "join marts.audience_single_feature_cross_sell a using (account_id) "
                "where c.role = 'decision_maker' order by 1 limit 1"
            )
        ).one()
        conn.execute(sa.text("update raw.contacts set is_unsubscribed = true where contact_id = :c"), {"c": first.contact_id})
        # The same person again, as the CRM's second record of them (another case, another role id).
        conn.execute(
            sa.text(
                "insert into raw.contacts (contact_id, account_id, email, role, _load_id, _line) "
                "select 'C-AGAIN', account_id, upper(email), 'decision_maker', _load_id, 0 "
                "from raw.contacts where contact_id = :c"
            ),
            {"c": first.contact_id},
        )
    db, _ = built_marts
    try:
        run_dbt(db, settings, ["run", "--select", "account_contacts"], use_prefect=False)  # as the next build would
        run_playbooks(marts_engine, settings, date(2026, 3, 31), gate_open=True)
    finally:
        with marts_engine.begin() as conn:
            conn.execute(sa.text("delete from raw.contacts where contact_id = 'C-AGAIN'"))
            conn.execute(sa.text("update raw.contacts set is_unsubscribed = false where contact_id = :c"), {"c": first.contact_id})
        run_dbt(db, settings, ["run", "--select", "account_contacts"], use_prefect=False)
    with marts_engine.connect() as conn:
        fired = conn.execute(
            sa.text("select status, detail from ops.playbook_actions where playbook = 'single_feature_cross_sell' and account_id = :a"),
            {"a": first.account_id},
        ).first()
        mailed = conn.execute(
            sa.text("select count(*) from ops.outbox where lower(to_email) = lower(:e)"), {"e": first.email}
        ).scalar_one()
    assert fired is not None and mailed == 0


def test_unsubscribe_tokens_are_signed_per_address_and_purpose_and_url_encoded() -> None:
    from csflow.links import unsubscribe_url

    settings = Settings(unsubscribe_secret="a-long-random-secret", base_url="https://cs.example.org")
    url = unsubscribe_url(settings, "Mika+news@Example.com")
    token = url.removeprefix("https://cs.example.org/unsubscribe/")
    assert "/" not in token and "+" not in token and "@" not in token
    assert tokens.verify("a-long-random-secret", "unsubscribe", token) == "mika+news@example.com"
    assert tokens.verify("change-me", "unsubscribe", token) is None  # another secret
    assert tokens.verify("a-long-random-secret", "outcome", token) is None  # another purpose
    value, signature = token.split(".")
    forged = tokens.sign("a-long-random-secret", "unsubscribe", "victim@example.com").split(".")[0] + "." + signature
    assert tokens.verify("a-long-random-secret", "unsubscribe", forged) is None


def test_customer_email_is_held_with_the_example_secret_outside_the_file_backend(
    built_marts, marts_engine, tmp_path: Path
) -> None:
    from csflow.playbooks import run_playbooks

    _, settings = built_marts
    smtp = dataclasses.replace(settings, email_backend="smtp")
    results = run_playbooks(marts_engine, smtp, date(2026, 3, 31), gate_open=True)
    held = {why for r in results for why in r.held}
    assert held == {smtp.customer_email_refusal()} and "unsubscribe_secret" in next(iter(held))
    with marts_engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ops.outbox where is_customer_facing")).scalar_one() == 0
    # And a message queued before the settings changed is held at send time too.
    queue(marts_engine, 1, customer=True)
    report = deliver(
        marts_engine, FileMailer(tmp_path, "cs@example.com"), kinds=("alert",), hold_customer=smtp.customer_email_refusal()
    )
    assert report.held == 1 and report.sent == 0 and "unsubscribe_secret" in (report.problem() or "")


# --------------------------------------------------------------------------
# 8, 10, 11. Ingest: one bad value costs one row


def test_hostile_values_cost_one_row_each_and_the_other_files_still_load(engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,csm@example.com,2024-01-01")
    (land / "contacts.csv").write_bytes(
        b"contact_id,account_id,email,contact_name\n"
        b"C1,A1,one@example.com,Ok\n"
        b"C2,A1,two@example.com,Bad\x00Name\n"
        b"C3,A1,three@example.com,Fine\n"
    )
    write_csv(
        land,
        "usage_events.csv",
        """
        account_id,occurred_at,event_type,user_id
        A1,2026-03-01T10:00:00+09:00,login,u1
        A1,2026-03-01T10:00:00+16:00,login,u1
        A1,9999-12-31T23:00:00-05:00,login,u1
        A1,2026-02-30T10:00:00Z,login,u1
        A1,2026-03-01T10:00:00+09:00,login,u2
        A1,2026-03-01T10:00:00+09:00,login,u2
        """,
    )
    write_csv(
        land,
        "contracts.csv",
        """
        contract_id,account_id,plan,start_date,end_date,arr,status
        K1,A1,pro,2025-01-01,2026-01-01,1200.00,renewed
        K2,A1,pro,2026-01-01,2027-01-01,1e999,active
        K3,A1,pro,2026-01-01,2027-01-01,-5,active
        """,
    )
    write_csv(land, "orders.csv", "order_id,account_id,ordered_at,amount\nO1,A1,2026-02-01T00:00:00Z,-300.00")
    write_csv(land, "invoices.csv", "invoice_id,account_id,due_date,amount\nI1,A1,2026-02-01,-1\nI2,A1,2026-03-01,10")
    report = ingest_folder(engine, land)
    by_file = {f.entity: f for f in report.files}
    assert all(f.status == "loaded" for f in report.files)
    assert (by_file["contacts"].rows_loaded, by_file["contacts"].rows_rejected) == (2, 1)
    # Two users' logins in the same second are two events; only the exact repeat is a duplicate.
    usage = by_file["usage_events"]
    assert (usage.rows_loaded, usage.rows_rejected, usage.rows_duplicate) == (2, 3, 1)
    assert (by_file["contracts"].rows_loaded, by_file["orders"].rows_loaded, by_file["invoices"].rows_loaded) == (1, 1, 1)
    with engine.connect() as conn:
        rejects = {
            (r.file_name, r.line, r.column_name): r.reason
            for r in conn.execute(sa.text("select * from raw.current_load_rejects"))
        }
        running = conn.execute(sa.text("select count(*) from raw.loads where status = 'running'")).scalar_one()
    assert rejects[("contacts.csv", 3, "contact_name")] == NUL_REASON
    assert "offset within ±15:59" in rejects[("usage_events.csv", 3, "occurred_at")]
    assert rejects[("usage_events.csv", 4, "occurred_at")] == RANGE_REASON
    assert rejects[("contracts.csv", 3, "arr")] == "not a finite number"
    assert rejects[("contracts.csv", 4, "arr")] == "must be at least 0"
    assert rejects[("invoices.csv", 2, "amount")] == "must be at least 0"
    assert running == 0


def test_a_database_error_on_one_file_rejects_that_file_and_the_next_ones_load(engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,csm@example.com,2024-01-01")
    write_csv(land, "orders.csv", "order_id,account_id,ordered_at,amount\nO1,A1,2026-02-01T00:00:00Z,300.00")
    write_csv(land, "invoices.csv", "invoice_id,account_id,due_date,amount\nI1,A1,2026-02-01,10")
    with engine.begin() as conn:  # something the checks cannot know about: a constraint a DBA added
        conn.execute(sa.text("alter table raw.orders add constraint small_orders check (amount < 100)"))
    report = ingest_folder(engine, land)
    by_file = {f.entity: f for f in report.files}
    assert by_file["orders"].status == "rejected" and "the database refused the load" in by_file["orders"].message
    assert "small_orders" in by_file["orders"].message
    assert by_file["invoices"].status == "loaded" and by_file["invoices"].rows_loaded == 1
    assert scalar(engine, "select count(*) from raw.loads where status = 'running'") == 0


def test_a_load_killed_mid_file_is_marked_interrupted_on_the_next_start(warehouse: Warehouse, engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,csm@example.com,2024-01-01")
    with open(land / "usage_events.csv", "w", encoding="utf-8") as f:
        f.write("account_id,occurred_at,event_type,event_id\n")
        for i in range(1_500_000):
            f.write(f"A1,2026-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z,login,E{i}\n")
    env = {"CSFLOW_DATABASE_URL": warehouse.url.render_as_string(hide_password=False)}
    loader = _csflow("ingest", str(land), env=env, cwd=tmp_path)
    _wait_for(lambda: scalar(engine, "select to_regclass('raw.loads') is not null") and scalar(
        engine, "select count(*) from raw.loads where entity = 'usage_events' and status = 'running'"
    ) == 1, timeout=60)
    loader.send_signal(signal.SIGKILL)
    loader.wait()
    with engine.begin() as conn:  # a reject row of the cut-short load, as if it had got that far
        load_id = conn.execute(sa.text("select max(load_id) from raw.loads where entity = 'usage_events'")).scalar_one()
        conn.execute(
            sa.text(
                "insert into raw.load_rejects (load_id, entity, file_name, line, reason) "
                "values (:id, 'usage_events', 'usage_events.csv', 2, 'half a load')"
            ),
            {"id": load_id},
        )
    (land / "usage_events.csv").unlink()
    ingest_folder(engine, land)
    with engine.connect() as conn:
        status = conn.execute(sa.text("select status from raw.loads where load_id = :id"), {"id": load_id}).scalar_one()
        current = conn.execute(sa.text("select count(*) from raw.current_load_rejects where load_id = :id"), {"id": load_id}).scalar_one()
        kept = conn.execute(sa.text("select count(*) from raw.usage_events")).scalar_one()
    assert (status, current, kept) == ("interrupted", 0, 0)


# --------------------------------------------------------------------------
# 9. Outcomes: validated like ingest, good rows kept


def test_hostile_outcome_rows_are_rejected_and_the_good_ones_kept(fired, marts_engine, tmp_path: Path) -> None:
    from csflow.outcomes import import_outcomes

    a, b = (f["action_id"] for f in fired[:2])
    path = tmp_path / "outcomes.csv"
    path.write_bytes(
        (
            "action_id,outcome,note,recorded_at\n"
            f"{a},won,signed,2026-W13-2\n"
            f"{a},won,signed,2026-04-02T10:00:00+16:00\n"
            f"{b},lost,bad\x00note,\n"
            f"{a},won,good,2026-04-02T10:00:00+09:00\n"
        ).encode()
    )
    report = import_outcomes(marts_engine, path)
    assert [line for line, _ in report.rejects] == [2, 3, 4]
    assert NUL_REASON in report.rejects[2][1]
    assert report.recorded == 1
    with marts_engine.connect() as conn:
        got = conn.execute(sa.text("select outcome, outcome_note from ops.playbook_actions where action_id = :a"), {"a": a}).one()
    assert tuple(got) == ("won", "good")


# --------------------------------------------------------------------------
# 13. One run at a time per warehouse


def test_a_second_run_waits_then_names_who_holds_the_warehouse(warehouse: Warehouse) -> None:
    with warehouse.exclusive("run 2026-03-31", wait_seconds=5):
        started = time.monotonic()
        with pytest.raises(WarehouseBusy) as busy, warehouse.exclusive("run 2026-04-01", wait_seconds=1):
            pass
        assert time.monotonic() - started >= 1
    message = str(busy.value)
    assert "csflow run 2026-03-31 (pid " in message and "has held it since" in message
    assert "run_lock_wait_seconds" in message
    with warehouse.exclusive("run 2026-04-01", wait_seconds=1):  # free again
        pass


def test_two_ingests_at_once_both_finish_one_after_the_other(warehouse: Warehouse, engine, tmp_path: Path) -> None:
    from csflow.demo import generate

    land = tmp_path / "landing"
    written = generate(land, accounts=40, seed=3, as_of=date(2026, 3, 31))
    env = {"CSFLOW_DATABASE_URL": warehouse.url.render_as_string(hide_password=False)}
    loaders = [_csflow("ingest", str(land), env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in loaders]
    assert [p.returncode for p in loaders] == [0, 0], outputs
    for entity, rows in written.items():
        assert scalar(engine, f"select count(*) from raw.{entity}") == rows, entity


def test_every_deployment_that_writes_the_warehouse_runs_one_at_a_time() -> None:
    manifest = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    assert {d["name"]: d.get("concurrency_limit") for d in manifest["deployments"]} == {
        "nightly": 1, "csm-digests": 1, "kpi-report": 1, "backfill": 1, "weekly": 1,
    }


# --------------------------------------------------------------------------
# 14. Data the CLI prints is never read as terminal markup


def test_names_with_markup_do_not_break_the_command_line(warehouse: Warehouse, engine, monkeypatch, tmp_path: Path) -> None:
    name = "[/][b]X[/b]"
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", f"account_id,{name}\nA1,One")  # rejected whole: the message names the header
    monkeypatch.setenv("CSFLOW_DATABASE_URL", warehouse.url.render_as_string(hide_password=False))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["ingest", str(land)])
    assert result.exit_code == 1 and name in result.stderr, result.output
    queue(engine, 1)
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.outbox set subject = :s"), {"s": name})
    for args in (["outbox"], ["send", "--dry-run"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert name in result.output, args


# --------------------------------------------------------------------------
# 15. No stored script in Data Docs


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def test_data_docs_show_hostile_values_as_text(warehouse: Warehouse, engine, tmp_path: Path) -> None:
    from csflow.validation import build_data_docs, run_validation

    hostile = "<img src=x onerror=alert(1)>"
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,csm@example.com,2024-01-01")
    write_csv(land, "contacts.csv", "contact_id,account_id,email\nC1,A1,one@example.com")
    ingest_folder(engine, land)
    with engine.begin() as conn:  # written around ingest, which would have rejected it
        conn.execute(
            sa.text("insert into raw.contacts (contact_id, account_id, email, _load_id, _line) select 'C2', 'A1', :e, _load_id, 3 from raw.contacts"),
            {"e": hostile},
        )
    report = run_validation(warehouse, date(2026, 3, 31), "hostile", ["raw_contacts"])
    assert any(hostile in str(e.sample) for e in report.failures)
    index = build_data_docs(report, tmp_path / "docs")
    pages = list(index.parent.rglob("*.html"))
    assert pages
    shown = False
    for page in pages:
        text = page.read_text(encoding="utf-8")
        parser = _Tags()
        parser.feed(text)
        assert not any(tag == "img" and "onerror" in attrs for tag, attrs in parser.found), page
        shown = shown or "&lt;img src=x onerror=alert(1)&gt;" in text
    assert shown


# --------------------------------------------------------------------------
# 16. Credentials never travel in clear text off this host


def test_credentials_in_clear_text_are_refused_unless_loopback_or_allowed() -> None:
    with pytest.raises(ConfigError, match=r"sendgrid_host .* is not https"):
        SendGridMailer(Settings(sendgrid_host="http://sendgrid.internal:8080"), "SG.key")
    with pytest.raises(ConfigError, match="without STARTTLS"):
        SmtpMailer(Settings(smtp_host="mail.example.com", smtp_username="u", smtp_password="p"))
    SendGridMailer(Settings(sendgrid_host="http://127.0.0.1:9"), "SG.key")  # loopback: the stand-in
    SendGridMailer(Settings(sendgrid_host="https://api.sendgrid.com"), "SG.key")
    SmtpMailer(Settings(smtp_host="localhost", smtp_username="u", smtp_password="p"))
    SmtpMailer(Settings(smtp_host="mail.example.com", smtp_username="u", smtp_starttls=True))
    SendGridMailer(Settings(sendgrid_host="http://sendgrid.internal", allow_insecure_transport=True), "SG.key")
