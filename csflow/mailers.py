"""Delivery backends: files (the default), SMTP, SendGrid.

Each makes exactly one attempt and classifies the outcome by *when* it
failed; retries, backoff and bookkeeping live in csflow.outbox, so every
backend behaves the same:

- sent: accepted; the provider's message id is kept;
- failed: certainly not sent, and sending again will not help (the message
  could not be built, a malformed address, login refused, no STARTTLS, a 4xx
  answer other than 429);
- retry: certainly not sent, worth another try (connection refused or timed
  out before the request was complete, 429, 5xx, an SMTP 4xx reply);
- unknown: the whole request went out and no answer came back (a read
  timeout, a reset while waiting for the reply): the provider may have it.

Every message goes to exactly one recipient, checked again here with the
one address rule (csflow.addresses), and credentials never travel in clear
text to a host other than loopback unless a setting says so.
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.client
import json
import logging
import os
import re
import smtplib
import ssl
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from csflow.addresses import is_address
from csflow.config import ConfigError, Settings, env_name, is_loopback_host
from csflow.outbox import DeliveryReport, Mailer, Message, SendResult, deliver

log = logging.getLogger(__name__)

# RFC 8058: a mail client may unsubscribe with one POST of this body to the List-Unsubscribe URL.
ONE_CLICK = "List-Unsubscribe=One-Click"
_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]+")


def _one_line(value: str) -> str:
    """Header text from data: line breaks and control characters never become header syntax."""
    return _CONTROL.sub(" ", value).strip()


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words, each under 76 columns, never splitting a character."""
    words, chunk, size = [], [], 0
    for char in text:
        n = len(char.encode("utf-8"))
        if size + n > 45:  # 45 bytes -> 60 base64 characters, 72 with the =?utf-8?b?...?= frame
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words)


def _header_value(value: str) -> str:
    """One header's value from data: plain if short ASCII, else encoded words, folded."""
    text = _one_line(value)
    return text if text.isascii() and len(text) <= 900 else _encoded_words(text)


def _mailbox(name: str | None, address: str) -> str:
    """`Name <address>`: the name quoted when ASCII, encoded when not; the address as checked."""
    name = _one_line(name or "")
    if not name:
        return address
    if name.isascii():
        return f'"{name.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}" <{address}>'
    return f"{_encoded_words(name)} <{address}>"


def _base64_lines(data: bytes) -> bytes:
    """Base64 in 76-column lines, each ended by CRLF (RFC 2045)."""
    b64 = base64.b64encode(data)
    return b"\r\n".join([b64[i : i + 76] for i in range(0, len(b64), 76)]) + b"\r\n"


@dataclass(frozen=True)
class Mime:
    data: bytes  # the whole message, CRLF line ends, as SMTP sends it
    message_id: str


def build_mime(message: Message, from_email: str, from_name: str) -> Mime:
    """HTML with a plain-text part, inline images as related parts; one recipient.

    Written directly rather than through the email package's generator, which
    spends milliseconds per message folding headers it does not need to fold:
    bodies are base64 (so the boundaries, which contain "=", can never occur in
    them), and only data headers (subject, names) may need encoding.
    Raises ValueError for an address that is not exactly one mailbox.
    """
    from_email, from_name = message.from_email or from_email, message.from_name or from_name
    for label, address in (("recipient", message.to_email), ("sender", from_email), ("reply-to", message.reply_to)):
        if address is not None and not is_address(address):
            raise ValueError(f"{label} {address!r} is not exactly one email address")
    tag = f"{message.message_id}.{uuid.uuid4().hex[:16]}"
    alternative, related = f"==csflow-alt-{tag}==", f"==csflow-rel-{tag}=="
    message_id = make_msgid(idstring=f"csflow.{message.message_id}", domain=from_email.split("@")[-1])
    headers = [
        ("From", _mailbox(from_name, from_email)),
        ("To", _mailbox(message.to_name, message.to_email)),
        *([("Reply-To", _mailbox(None, message.reply_to))] if message.reply_to else []),
        ("Subject", _header_value(message.subject)),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", message_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{alternative}"'),
    ]
    if message.unsubscribe_url:
        headers.append(("List-Unsubscribe", f"<{_one_line(message.unsubscribe_url)}>"))
        headers.append(("List-Unsubscribe-Post", ONE_CLICK))
    if message.action_id is not None:
        headers.append(("X-Csflow-Action-Id", str(int(message.action_id))))

    def text_part(body: str, subtype: str) -> bytes:
        return (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode()
            + _base64_lines(body.encode("utf-8"))
        )

    html = text_part(message.html_body, "html")
    if message.inline_images:
        parts = [html]
        for image in message.inline_images:
            name = _one_line(image.filename).replace('"', "")
            parts.append(
                f"Content-Type: {_one_line(image.mime_type)}\r\nContent-Transfer-Encoding: base64\r\n"
                f"Content-ID: <{_one_line(image.content_id)}>\r\n"
                f'Content-Disposition: inline; filename="{name}"\r\n\r\n'.encode()
                + _base64_lines(base64.b64decode(image.content_b64))
            )
        html = f'Content-Type: multipart/related; boundary="{related}"\r\n\r\n'.encode() + _multipart(related, parts)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    body = _multipart(alternative, [text_part(message.text_body, "plain"), html])
    return Mime(head + b"\r\n" + body, message_id)


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    dash = f"--{boundary}".encode()
    return b"".join(dash + b"\r\n" + part + b"\r\n" for part in parts) + dash + b"--\r\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "message"


class FileMailer(Mailer):
    """Writes <id>-<kind>-<subject>.eml and .html into a folder, plus index.html.

    Writing a message again overwrites the same two files, so a repeated
    attempt can never show up twice: slots may commit their claims lazily.
    One instance serves every sending slot.
    """

    name = "file"
    idempotent = True
    # Writing files is work for this interpreter, not waiting on a network:
    # beyond two slots (one writing while the other waits on the database)
    # they only contend for it.
    max_concurrency = 2
    INDEX_CACHE = ".index.json"

    def __init__(self, outbox_dir: Path, from_email: str, from_name: str = "csflow"):
        self.outbox_dir = outbox_dir
        self.from_email = from_email
        self.from_name = from_name
        # file stem -> its index row (INDEX_COLUMNS but the links), for this run's messages
        self._rows: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _stem(self, message: Message) -> str:
        return f"{message.message_id:06d}-{message.kind}-{_slug(message.subject)}"

    def _note(self, message: Message, status: str) -> None:
        when = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M")
        row = [when, message.kind, message.playbook or "", message.to_email, status, message.subject]
        with self._lock:
            self._rows[self._stem(message)] = row

    def send(self, message: Message) -> SendResult:
        try:
            mime = build_mime(message, self.from_email, self.from_name).data
        except (ValueError, TypeError, UnicodeError, LookupError) as exc:
            self._note(message, "failed: cannot build")
            return SendResult("failed", detail=f"cannot build the message: {exc}")
        stem = self._stem(message)
        path = os.path.join(self.outbox_dir, stem)
        try:
            if not self._rows:
                self.outbox_dir.mkdir(parents=True, exist_ok=True)
            with open(f"{path}.eml", "wb") as eml, open(f"{path}.html", "wb") as page:
                eml.write(mime)
                page.write(standalone_html(message).encode("utf-8"))
        except OSError as exc:  # a full disk, a folder nobody may write: nothing was delivered
            return SendResult("failed", detail=f"cannot write to {self.outbox_dir}: {exc}", kind="cannot write")
        self._note(message, "written")
        return SendResult("sent", provider_message_id=stem + ".eml")

    def skipped(self, message: Message) -> None:
        self._note(message, "skipped: unsubscribed")

    def close(self) -> None:
        if self._rows:
            try:
                self.write_index()
            except OSError as exc:  # the messages' own files are what counts; the index is a convenience
                log.warning("could not write %s: %s", self.outbox_dir / "index.html", exc)

    def write_index(self) -> Path:
        """outbox/index.html: every message the backend handled, newest first, with links.

        Each message's row (time, kind, play, recipient, status, subject) is
        kept in outbox/.index.json: this run's are known from handling them,
        earlier ones from the cache, and only .eml files the cache does not
        know (or knows in an older shape) have their headers read. Messages
        skipped or failed have a row and no files. A filter box narrows the
        table as you type.
        """
        from email import policy
        from email.parser import BytesHeaderParser

        cache_path = self.outbox_dir / self.INDEX_CACHE
        try:
            cached: dict[str, list[str]] = json.loads(cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = {}
        cached.update(self._rows)
        files = {eml.stem: eml for eml in self.outbox_dir.glob("*.eml")}
        entries: dict[str, list[str]] = {}
        for stem, row in cached.items():  # rows whose files were deleted go; skipped and failed ones stay
            if len(row) == len(INDEX_COLUMNS) - 1 and (stem in files or row[4] != "written"):
                entries[stem] = row
        for stem, eml in files.items():
            if stem not in entries:
                headers = BytesHeaderParser(policy=policy.default).parsebytes(eml.read_bytes())
                when = datetime.fromtimestamp(eml.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
                kind = stem.split("-")[1] if stem.count("-") >= 2 else ""
                entries[stem] = [when, kind, "", str(headers["To"]), "written", str(headers["Subject"])]
        cache_path.write_text(json.dumps(entries), encoding="utf-8")
        rows = []
        for stem in sorted(entries, key=_message_order, reverse=True):
            *cells, status, subject = entries[stem]
            written = status == "written"
            subject_cell = f"<a href='{html.escape(stem)}.html'>{html.escape(subject)}</a>" if written else html.escape(subject)
            raw_cell = f"<a href='{html.escape(stem)}.eml'>.eml</a>" if written else ""
            rows.append(
                "<tr>"
                + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                + f"<td class='{'ok' if written else 'not-sent'}'>{html.escape(status)}</td>"
                + f"<td>{subject_cell}</td><td>{raw_cell}</td></tr>"
            )
        index = self.outbox_dir / "index.html"
        index.write_text(
            "<!doctype html><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            "<title>csflow outbox</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2933}"
            "table{border-collapse:collapse}th{text-align:left;font-size:12px;color:#616e7c}"
            "td,th{padding:4px 12px;border-bottom:1px solid #e4e7eb;vertical-align:top}td:first-child{white-space:nowrap}"
            ".not-sent{color:#ab091e;font-weight:600}"
            "input{font:inherit;padding:6px 10px;width:min(28em,100%);margin-bottom:1em}</style>"
            f"<h1>csflow outbox</h1><p>{len(rows)} message(s), newest first. Files here went nowhere: "
            "the file backend writes each message instead of sending it.</p>"
            "<input id='filter' type='search' placeholder='Filter: a recipient, a play, a status, words of a subject' "
            "aria-label='Filter messages' autofocus>"
            "<table id='messages'><tr>" + "".join(f"<th>{c}</th>" for c in INDEX_COLUMNS) + "</tr>"
            + "".join(rows) + "</table>"
            "<script>document.getElementById('filter').addEventListener('input', function () {"
            "var words = this.value.toLowerCase().split(/\\s+/).filter(Boolean);"
            "document.querySelectorAll('#messages tr + tr').forEach(function (row) {"
            "var text = row.textContent.toLowerCase();"
            "row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });});});</script>",
            encoding="utf-8",
        )
        return index


# The columns of outbox/index.html.
INDEX_COLUMNS = ("time", "kind", "play", "to", "status", "subject", "raw")


def _message_order(stem: str) -> tuple[int, str]:
    """Newest first by message id (the stem's leading number), whatever its width."""
    number = stem.split("-", 1)[0]
    return (int(number) if number.isdigit() else -1, stem)


def standalone_html(message: Message) -> str:
    """The HTML body with inline images embedded as data: URIs, to open in a browser."""
    body = message.html_body
    for image in message.inline_images:
        body = body.replace(f"cid:{image.content_id}", f"data:{image.mime_type};base64,{image.content_b64}")
    return body


def _smtp_login_in_clear(s: Settings) -> None:
    if s.smtp_username and not s.smtp_starttls and not s.allow_insecure_transport and not is_loopback_host(s.smtp_host):
        raise ConfigError(
            f"setting smtp_starttls ({env_name('smtp_starttls')}): logging in to {s.smtp_host} without STARTTLS "
            "would send the password in clear text; turn STARTTLS on, or set allow_insecure_transport "
            "for a trusted network"
        )


def _sendgrid_key_in_clear(s: Settings) -> None:
    url = urlsplit(s.sendgrid_host)
    if url.scheme != "https" and not s.allow_insecure_transport and not is_loopback_host(url.hostname):
        raise ConfigError(
            f"setting sendgrid_host ({env_name('sendgrid_host')}): {s.sendgrid_host!r} is not https; the API key "
            "would travel in clear text (allow_insecure_transport overrides this for a trusted network)"
        )


def refuse_clear_text_credentials(settings: Settings) -> None:
    """A ConfigError when the configured backend would send its key or password in clear text off this host."""
    check = {"smtp": _smtp_login_in_clear, "sendgrid": _sendgrid_key_in_clear}.get(settings.email_backend)
    if check:
        check(settings)


def _dot_stuffed(payload: bytes) -> bytes:
    """DATA content: lines starting with '.' doubled, then the terminating CRLF.CRLF (RFC 5321)."""
    data = re.sub(rb"(?m)^\.", b"..", payload)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _reply_text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


class SmtpMailer(Mailer):
    """SMTP with optional STARTTLS and login; one connection per sending slot.

    The transaction is driven step by step (MAIL, RCPT, DATA) so that each
    failure is known to be before or after the message reached the server:
    only a lost connection after the final dot is unknown.
    """

    name = "smtp"

    def __init__(self, settings: Settings):
        _smtp_login_in_clear(settings)
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def slot(self) -> SmtpMailer:
        return SmtpMailer(self.settings)

    def _connect(self) -> SendResult | None:
        """Open, secure and log in; a SendResult (nothing was sent) when that fails."""
        s = self.settings
        where = f"SMTP server {s.smtp_host}:{s.smtp_port}"
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.email_timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, unknown host, bad greeting
            return SendResult("retry", detail=f"cannot connect to {where}: {exc}", kind="cannot connect")
        try:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
        except smtplib.SMTPNotSupportedError as exc:
            smtp.close()
            return SendResult(
                "failed", detail=f"{where}: {exc} (settings smtp_starttls, smtp_username)", kind="not supported"
            )
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            return SendResult(
                "failed",
                status_code=exc.smtp_code,
                detail=f"{where} refused the login: {exc.smtp_code} "
                f"{_reply_text(exc.smtp_error)} (settings smtp_username, smtp_password)",
                kind="login refused",
            )
        except (ssl.SSLError, smtplib.SMTPResponseException) as exc:
            smtp.close()
            return SendResult("failed", detail=f"{where}: TLS or login failed: {exc}", kind="TLS")
        except (OSError, smtplib.SMTPException) as exc:  # disconnected or timed out while setting up
            smtp.close()
            return SendResult(
                "retry", detail=f"{where}: connection lost while setting up: {exc}", kind="cannot connect"
            )
        self._smtp = smtp
        return None

    def send(self, message: Message) -> SendResult:
        s = self.settings
        try:
            mime = build_mime(message, s.from_email, s.from_name)
            payload = _dot_stuffed(mime.data)
        except (ValueError, TypeError, UnicodeError, LookupError) as exc:
            return SendResult("failed", detail=f"cannot build the message: {exc}")
        if self._smtp is None and (refused := self._connect()) is not None:
            return refused
        smtp = self._smtp
        assert smtp is not None
        # Before the final dot the server holds no message: any failure means not sent.
        try:
            smtp.ehlo_or_helo_if_needed()
            for command, ok, call in (
                ("MAIL FROM", (250,), lambda: smtp.mail(message.from_email or s.from_email)),
                ("RCPT TO", (250, 251), lambda: smtp.rcpt(message.to_email)),
                ("DATA", (354,), lambda: smtp.docmd("data")),
            ):
                code, reply = call()
                if code not in ok:
                    with contextlib.suppress(OSError, smtplib.SMTPException):
                        smtp.rset()
                    return SendResult(
                        "retry" if 400 <= code < 500 else "failed",
                        status_code=code,
                        detail=f"{command} refused: {code} {_reply_text(reply)}",
                        kind=f"SMTP {code}" if command == "MAIL FROM" else "",
                    )
            smtp.send(payload)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return SendResult(
                "retry", detail=f"connection lost before the message was complete: {exc}", kind="connection lost"
            )
        # The whole message is with the server: only its reply says whether it took it.
        try:
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return SendResult(
                "unknown",
                detail=f"no reply after the message was sent: {exc}; check the server's log",
                kind="no answer",
            )
        if code != 250:
            return SendResult(
                "retry" if 400 <= code < 500 else "failed",
                status_code=code,
                detail=f"message refused: {code} {_reply_text(reply)}",
                kind=f"SMTP {code}",
            )
        return SendResult("sent", provider_message_id=mime.message_id, status_code=code)

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


def sendgrid_api_key(settings: Settings) -> str:
    """From SENDGRID_API_KEY, else from a Prefect Secret block; never a flow parameter."""
    key = os.environ.get("SENDGRID_API_KEY", "")
    if key:
        return key
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(settings.sendgrid_secret_block).get())
    except Exception:
        raise ConfigError(
            "SendGrid needs an API key: set SENDGRID_API_KEY or create a Prefect Secret block "
            f"named {settings.sendgrid_secret_block!r} (setting sendgrid_secret_block)"
        ) from None


class SendGridMailer(Mailer):
    """The v3 mail send API through the official client, one request per message.

    Each message is rendered for its recipient, so one request per message
    keeps the X-Message-Id, the outcome and any error tied to one message.
    """

    name = "sendgrid"

    def __init__(self, settings: Settings, api_key: str):
        from sendgrid import SendGridAPIClient

        _sendgrid_key_in_clear(settings)
        self.settings = settings
        self.api_key = api_key
        self.client = SendGridAPIClient(api_key=api_key, host=settings.sendgrid_host)

    def slot(self) -> SendGridMailer:
        return SendGridMailer(self.settings, self.api_key)

    def pull_suppressions(self, engine: sa.Engine) -> int | None:
        """Suppress the addresses SendGrid lists (for installations its webhook cannot reach).

        A failed pull is logged and the send goes on: SendGrid itself still
        drops mail to its group's suppressed addresses.
        """
        from python_http_client.exceptions import HTTPError

        from csflow.provider_events import pull_sendgrid_suppressions

        try:
            with engine.begin() as conn:
                return pull_sendgrid_suppressions(
                    conn, self.client, self.settings.sendgrid_asm_group_id, self.settings.email_timeout_seconds
                )
        except (HTTPError, OSError, ValueError) as exc:
            log.warning("could not pull SendGrid's suppressions (%s: %s); sending on", exc.__class__.__name__, exc)
            return None

    def payload(self, message: Message) -> dict:
        from sendgrid.helpers.mail import (
            Asm,
            Attachment,
            Category,
            ContentId,
            CustomArg,
            Disposition,
            FileContent,
            FileName,
            FileType,
            From,
            GroupId,
            Header,
            Mail,
            ReplyTo,
            To,
        )

        s = self.settings
        mail = Mail(
            from_email=From(message.from_email or s.from_email, message.from_name or s.from_name),
            to_emails=To(message.to_email, message.to_name),
            subject=message.subject,
            plain_text_content=message.text_body,
            html_content=message.html_body,
        )
        if message.reply_to:
            mail.reply_to = ReplyTo(message.reply_to)
        # custom_args carry only the action id: no personal data leaves in event webhooks.
        if message.action_id is not None:
            mail.custom_arg = CustomArg("action_id", str(message.action_id))
        if message.playbook:
            mail.category = Category(message.playbook)
        if message.is_customer_facing and s.sendgrid_asm_group_id is not None:
            mail.asm = Asm(GroupId(s.sendgrid_asm_group_id))
        if message.unsubscribe_url:
            mail.header = Header("List-Unsubscribe", f"<{message.unsubscribe_url}>")
            mail.header = Header("List-Unsubscribe-Post", ONE_CLICK)
        for image in message.inline_images:
            mail.attachment = Attachment(
                FileContent(image.content_b64),
                FileName(image.filename),
                FileType(image.mime_type),
                Disposition("inline"),
                ContentId(image.content_id),
            )
        return mail.get()

    def send(self, message: Message) -> SendResult:
        from python_http_client.exceptions import HTTPError

        try:
            if not is_address(message.to_email):
                raise ValueError(f"recipient {message.to_email!r} is not exactly one email address")
            body = self.payload(message)
        except Exception as exc:  # the helpers validate too (e.g. a body that looks like an API key)
            return SendResult("failed", detail=f"cannot build the request: {exc.__class__.__name__}: {exc}")
        try:
            response = self.client.client.mail.send.post(request_body=body, timeout=self.settings.email_timeout_seconds)
        except HTTPError as exc:
            text = exc.body.decode("utf-8", errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
            code = int(exc.status_code)
            if code == 429 or code >= 500:
                return SendResult(
                    "retry", status_code=code, detail=text, retry_after=_retry_after(exc.headers), kind=f"HTTP {code}"
                )
            # 401/403 say the key is wrong for every message; other 4xx are this message's own.
            return SendResult(
                "failed", status_code=code, detail=_error_text(text), kind=f"HTTP {code}" if code in (401, 403) else ""
            )
        except urllib.error.URLError as exc:
            # urllib raises URLError while connecting or writing the request: it never arrived whole.
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                return SendResult("failed", detail=f"SendGrid's certificate was refused: {exc.reason}", kind="TLS")
            return SendResult(
                "retry", detail=f"could not send the request to SendGrid: {exc.reason}", kind="cannot connect"
            )
        except (OSError, http.client.HTTPException) as exc:
            # Raised while waiting for the answer: the request went out whole.
            return SendResult(
                "unknown", detail=f"no answer from SendGrid after the request was sent: {exc!r}", kind="no answer"
            )
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return SendResult("sent", provider_message_id=message_id, status_code=response.status_code)


def _retry_after(headers: object) -> float | None:
    """X-RateLimit-Reset is the Unix time at which the limit resets."""
    try:
        reset = headers.get("X-RateLimit-Reset") if headers is not None else None  # type: ignore[attr-defined]
        return max(0.0, float(reset) - time.time()) if reset else None
    except (TypeError, ValueError):
        return None


def _error_text(body: str) -> str:
    """SendGrid's error body, kept whole but readable."""
    try:
        errors = json.loads(body).get("errors", [])
        messages = "; ".join(f"{e.get('field') or '-'}: {e.get('message')}" for e in errors)
        return f"{messages} | {body}" if messages else body
    except (ValueError, AttributeError):
        return body


def make_mailer(settings: Settings) -> Mailer:
    if settings.email_backend == "smtp":
        return SmtpMailer(settings)
    if settings.email_backend == "sendgrid":
        return SendGridMailer(settings, sendgrid_api_key(settings))
    return FileMailer(settings.outbox_dir, settings.from_email, settings.from_name)


def deliver_outbox(
    engine: sa.Engine,
    settings: Settings,
    *,
    kinds: tuple[str, ...] | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> DeliveryReport:
    """The outbox through the configured backend, concurrency and stop rule.

    Customer email stays pending (held) while the settings would let anyone
    forge its unsubscribe links (Settings.customer_email_refusal). With
    SendGrid, its suppression lists are pulled first.
    """
    mailer = make_mailer(settings)
    if isinstance(mailer, SendGridMailer) and (kinds is None or "playbook" in kinds):
        mailer.pull_suppressions(engine)
    return deliver(
        engine,
        mailer,
        concurrency=settings.delivery_concurrency,
        limit=limit,
        progress=progress,
        kinds=kinds,
        stop_after_failures=settings.delivery_stop_after_failures,
        hold_customer=settings.customer_email_refusal(),
    )
