"""Delivery through the real sendgrid client against a local v3 server, a real
SMTP server (aiosmtpd), and files: nothing lost, nothing sent twice."""

from __future__ import annotations

import base64
import email
import socket
import time
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from csflow.config import Settings
from csflow.mailers import FileMailer, SendGridMailer, SmtpMailer
from csflow.outbox import (
    InlineImage,
    Message,
    RetryPolicy,
    SendingSlot,
    deliver,
    outbox_counts,
    queue_messages,
    resolve_unknown,
)
from csflow.suppressions import suppress
from tests.sendgrid_server import Scripted, SendGridStub

FAST = RetryPolicy(attempts=4, base_seconds=0.001, max_seconds=0.01)
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def queue(
    engine: sa.Engine, n: int, html: str = "<p>Hello {i}</p>", subject: str = "Renewal {i}", **kw: object
) -> list[int]:
    messages = [
        Message(
            dedupe_key=f"test:{subject.format(i=i)}",
            kind="playbook",
            to_email=f"person{i}@example.com",
            to_name=f"Person {i}",
            subject=subject.format(i=i),
            html_body=html.format(i=i),
            text_body=f"Hello {i}",
            action_id=1000 + i,
            playbook="renewal_alert",
            is_customer_facing=True,
            unsubscribe_url=f"https://example.com/u/{i}",
            **kw,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]
    with engine.begin() as conn:
        return queue_messages(conn, messages)


def statuses(engine: sa.Engine) -> dict[str, int]:
    return {k: v for k, v in outbox_counts(engine).items() if v}


@pytest.fixture
def stub():
    with SendGridStub() as server:
        yield server


@pytest.fixture
def sendgrid(stub: SendGridStub) -> SendGridMailer:
    settings = Settings(sendgrid_host=stub.url, sendgrid_asm_group_id=42, email_timeout_seconds=2)
    return SendGridMailer(settings, api_key=stub.api_key)


def test_sendgrid_success_stores_message_ids_and_sends_a_valid_body(engine, stub, sendgrid) -> None:
    queue(engine, 3)
    report = deliver(engine, sendgrid, policy=FAST)
    assert (report.sent, report.failed) == (3, 0)
    assert stub.invalid == []
    assert stub.accepted_action_ids() == ["1000", "1001", "1002"]
    body = stub.accepted[0]
    assert body["custom_args"] == {"action_id": "1000"}  # only the action id
    assert body["categories"] == ["renewal_alert"]
    assert body["asm"] == {"group_id": 42}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    with engine.connect() as conn:
        ids = conn.execute(sa.text("select provider_message_id from ops.outbox order by message_id")).scalars().all()
    assert all(ids) and len(set(ids)) == 3

    again = deliver(engine, sendgrid, policy=FAST)  # a repeated run sends nothing
    assert again.sent == 0 and len(stub.accepted) == 3


def test_permanent_failure_is_not_retried_and_keeps_the_error_body(engine, stub, sendgrid) -> None:
    queue(engine, 1)
    stub.then(Scripted(400, body={"errors": [{"message": "The from address does not match", "field": "from.email"}]}))
    report = deliver(engine, sendgrid, policy=FAST)
    assert report.failed == 1 and stub.requests == 1
    with engine.connect() as conn:
        error = conn.execute(sa.text("select last_error from ops.outbox")).scalar_one()
        attempts = conn.execute(sa.text("select count(*) from ops.delivery_attempts")).scalar_one()
    assert "from.email: The from address does not match" in error and attempts == 1


def test_429_then_success_waits_for_the_rate_limit_reset(engine, stub, sendgrid) -> None:
    queue(engine, 1)
    reset = int(time.time()) + 3
    stub.then(Scripted(429, headers={"X-RateLimit-Reset": str(reset)}))
    waits: list[float] = []
    report = deliver(engine, sendgrid, policy=RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=10), sleep=waits.append)
    assert report.sent == 1 and stub.requests == 2
    assert 1.5 < waits[0] <= 3.0  # honoured X-RateLimit-Reset, not just the tiny backoff
    with engine.connect() as conn:
        outcomes = conn.execute(sa.text("select outcome, status_code from ops.delivery_attempts order by attempt")).all()
    assert [tuple(o) for o in outcomes] == [("retry", 429), ("sent", 202)]


def test_sendgrid_down_mid_send_resumes_without_loss_or_duplicates(engine, stub, sendgrid) -> None:
    queue(engine, 6)
    # Two messages go through, then the API fails with 500s for longer than the retries last.
    stub.then(Scripted(), Scripted(), *[Scripted(500)] * FAST.attempts)
    first = deliver(engine, sendgrid, policy=FAST)
    assert (first.sent, first.waiting) == (2, 4)
    assert "retries ran out" in first.stopped and "stopped early" in (first.problem() or "")
    assert statuses(engine) == {"sent": 2, "pending": 4}

    with engine.begin() as conn:  # due again now rather than after the backoff
        conn.execute(sa.text("update ops.outbox set next_attempt_at = null"))
    second = deliver(engine, sendgrid, policy=FAST)
    assert second.sent == 4
    assert sorted(stub.accepted_action_ids()) == [str(1000 + i) for i in range(6)]  # each exactly once


def test_a_crash_between_claim_and_send_surfaces_unknown_and_never_resends(engine, stub, sendgrid) -> None:
    queue(engine, 3)
    crashed = SendingSlot(engine)
    assert crashed.claim(None, hold_customer=False)
    crashed.proxy.invalidate()  # the process "dies": its session, and with it its lock, ends
    report = deliver(engine, sendgrid, policy=FAST)
    assert len(report.unknown) == 1 and report.sent == 2
    assert statuses(engine) == {"sent": 2, "unknown": 1}
    assert stub.accepted_action_ids() == ["1001", "1002"]
    assert deliver(engine, sendgrid, policy=FAST).sent == 0  # unknown is not resent blindly

    resolve_unknown(engine, report.unknown[0], "pending")  # after checking SendGrid: not there
    assert deliver(engine, sendgrid, policy=FAST).sent == 1
    assert sorted(stub.accepted_action_ids()) == ["1000", "1001", "1002"]


def test_an_accepted_message_whose_answer_is_lost_is_unknown_not_resent(engine, stub, sendgrid) -> None:
    queue(engine, 1)
    stub.then(Scripted(drop_after_accept=True))
    report = deliver(engine, sendgrid, policy=FAST)
    assert report.unknown_now == 1 and len(stub.accepted) == 1
    assert deliver(engine, sendgrid, policy=FAST).sent == 0
    assert len(stub.accepted) == 1


def test_unreachable_sendgrid_leaves_messages_pending(engine) -> None:
    port = free_port()  # nothing listens there
    mailer = SendGridMailer(Settings(sendgrid_host=f"http://127.0.0.1:{port}"), api_key="SG.x")
    queue(engine, 2)
    report = deliver(engine, mailer, policy=FAST)
    assert report.waiting == 2 and statuses(engine) == {"pending": 2}
    assert report.unknown_total == 0 and "cannot connect" in report.stopped


def test_the_stub_refuses_what_sendgrid_would_refuse(stub, sendgrid) -> None:
    from python_http_client.exceptions import BadRequestsError

    bad = {"personalizations": [{"to": [{"email": "not-an-address"}]}], "from": {"email": "a@example.com"}}
    with pytest.raises(BadRequestsError):
        sendgrid.client.client.mail.send.post(request_body=bad)
    assert any("not-an-address" in e for e in stub.invalid)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: list[tuple[int, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        if self.refuse:
            code, text = self.refuse.pop(0)
            return f"{code} {text}"
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    port = free_port()  # aiosmtpd's controller cannot take port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_smtp_delivers_html_with_text_part_and_inline_images(engine, smtp_server) -> None:
    inbox, port = smtp_server
    queue(engine, 2, inline_images=[InlineImage("chart1", "chart.png", "image/png", PIXEL)])
    inbox.refuse = [(451, "try again later")]
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, from_email="cs@example.com"))
    report = deliver(engine, mailer, policy=FAST)
    assert report.sent == 2 and len(inbox.messages) == 2
    msg = inbox.messages[0]
    assert msg["To"] == "Person 0 <person0@example.com>" and msg["List-Unsubscribe"] == "<https://example.com/u/0>"
    assert msg.get_body(("plain",)).get_content().strip() == "Hello 0"
    related = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert related and related[0]["Content-ID"] == "<chart1>"

    queue_more = Message("test:refused", "alert", "x@example.com", "s", "<p>h</p>", "h")
    with engine.begin() as conn:
        queue_messages(conn, [queue_more])
    inbox.refuse = [(550, "mailbox unavailable")]
    assert deliver(engine, mailer, policy=FAST).failed == 1


def test_file_backend_writes_parseable_eml_html_and_an_index(engine, tmp_path: Path) -> None:
    queue(engine, 2, html="<p>Hello {i}</p><img src='cid:chart1'>", inline_images=[InlineImage("chart1", "chart.png", "image/png", PIXEL)])
    out = tmp_path / "outbox"
    report = deliver(engine, FileMailer(out, "cs@example.com"), policy=FAST)
    assert report.sent == 2
    emls = sorted(out.glob("*.eml"))
    assert len(emls) == 2 and len(list(out.glob("*.html"))) == 3  # two messages and the index
    parsed = email.message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Renewal 0"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hello 0</p><img src='cid:chart1'>"
    assert "data:image/png;base64," in emls[0].with_suffix(".html").read_text(encoding="utf-8")
    assert "Renewal 1" in (out / "index.html").read_text(encoding="utf-8")
    # A later run's index lists earlier messages too (from its cache) and drops deleted files.
    emls[0].unlink()
    queue(engine, 1, subject="Later {i}")
    assert deliver(engine, FileMailer(out, "cs@example.com"), policy=FAST).sent == 1
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "2 message(s)" in index and "Later 0" in index and "Renewal 1" in index and "Renewal 0" not in index
    # A message whose address was unsubscribed before it went out is listed as skipped, with no files.
    queue(engine, 1, subject="Unwanted {i}")
    with engine.begin() as conn:
        suppress(conn, "person0@example.com", "unsubscribe", "test")
    assert deliver(engine, FileMailer(out, "cs@example.com"), policy=FAST).skipped == 1
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "3 message(s)" in index and "<td class='not-sent'>skipped: unsubscribed</td><td>Unwanted 0</td><td></td>" in index
    assert not list(out.glob("*unwanted*"))
