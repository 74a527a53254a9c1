"""Delivery backends: files (the default), SMTP, SendGrid.

Each makes exactly one attempt and classifies the outcome; retries, backoff
and bookkeeping live in csflow.outbox so every backend behaves the same:

- sent: accepted; the provider's message id is kept,
- failed: refused for good (a 4xx other than 429); the error body is kept,
- retry: certainly not accepted (429, 5xx, connection refused),
- unknown: may have been accepted (timeout after the request went out).
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.client
import json
import os
import re
import smtplib
import socket
import time
import urllib.error
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from csflow.config import ConfigError, Settings
from csflow.outbox import Mailer, Message, SendResult


def build_mime(message: Message, from_email: str, from_name: str) -> EmailMessage:
    """HTML with a plain-text part, inline images as related parts."""
    mime = EmailMessage()
    mime["From"] = formataddr((from_name, from_email))
    mime["To"] = formataddr((message.to_name or "", message.to_email))
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(datetime.now(UTC))
    mime["Message-ID"] = make_msgid(idstring=f"csflow.{message.message_id}", domain=from_email.split("@")[-1])
    if message.unsubscribe_url:
        mime["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    if message.action_id is not None:
        mime["X-Csflow-Action-Id"] = str(message.action_id)
    mime.set_content(message.text_body)
    mime.add_alternative(message.html_body, subtype="html")
    if message.inline_images:
        html_part = mime.get_payload()[1]
        for image in message.inline_images:
            maintype, subtype = image.mime_type.split("/", 1)
            html_part.add_related(
                base64.b64decode(image.content_b64),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
                filename=image.filename,
            )
    return mime


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "message"


class FileMailer(Mailer):
    """Writes <id>-<kind>-<subject>.eml and .html into a folder, plus index.html."""

    name = "file"

    def __init__(self, outbox_dir: Path, from_email: str, from_name: str = "csflow"):
        self.outbox_dir = outbox_dir
        self.from_email = from_email
        self.from_name = from_name

    def send(self, message: Message) -> SendResult:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{message.message_id:06d}-{message.kind}-{_slug(message.subject)}"
        mime = build_mime(message, self.from_email, self.from_name)
        (self.outbox_dir / f"{stem}.eml").write_bytes(bytes(mime))
        (self.outbox_dir / f"{stem}.html").write_text(standalone_html(message), encoding="utf-8")
        self._wrote = True
        return SendResult("sent", provider_message_id=f"{stem}.eml")

    def close(self) -> None:
        if getattr(self, "_wrote", False):
            self.write_index()

    def write_index(self) -> Path:
        """outbox/index.html: every message written so far, newest first, with links.

        The To and Subject of each .eml are kept in outbox/.index.json, so a run
        reads the headers of its own new files only, not the whole history.
        """
        import json
        from email import policy
        from email.parser import BytesHeaderParser

        cache_path = self.outbox_dir / ".index.json"
        try:
            cached: dict[str, list[str]] = json.loads(cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = {}
        entries: dict[str, list[str]] = {}
        for eml in sorted(self.outbox_dir.glob("*.eml"), reverse=True):
            if eml.name not in cached:
                headers = BytesHeaderParser(policy=policy.default).parsebytes(eml.read_bytes())
                cached[eml.name] = [str(headers["To"]), str(headers["Subject"])]
            entries[eml.name] = cached[eml.name]
        cache_path.write_text(json.dumps(entries), encoding="utf-8")
        rows = [
            "<tr><td>{to}</td><td><a href='{html}'>{subject}</a></td><td><a href='{eml}'>.eml</a></td></tr>".format(
                to=html.escape(to),
                subject=html.escape(subject),
                html=html.escape(name.removesuffix(".eml") + ".html"),
                eml=html.escape(name),
            )
            for name, (to, subject) in entries.items()
        ]
        index = self.outbox_dir / "index.html"
        index.write_text(
            "<!doctype html><meta charset='utf-8'><title>csflow outbox</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px;border-bottom:1px solid #ddd}</style>"
            f"<h1>csflow outbox</h1><p>{len(rows)} message(s)</p>"
            "<table><tr><th>to</th><th>subject</th><th>raw</th></tr>" + "".join(rows) + "</table>",
            encoding="utf-8",
        )
        return index


def standalone_html(message: Message) -> str:
    """The HTML body with inline images embedded as data: URIs, to open in a browser."""
    body = message.html_body
    for image in message.inline_images:
        body = body.replace(f"cid:{image.content_id}", f"data:{image.mime_type};base64,{image.content_b64}")
    return body


class SmtpMailer(Mailer):
    """Plain SMTP with optional STARTTLS and login; one connection for a whole run."""

    name = "smtp"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            s = self.settings
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.email_timeout_seconds)
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
            self._smtp = smtp
        return self._smtp

    def send(self, message: Message) -> SendResult:
        mime = build_mime(message, self.settings.from_email, self.settings.from_name)
        try:
            smtp = self._connection()
        except (ConnectionRefusedError, smtplib.SMTPConnectError, socket.gaierror) as exc:
            return SendResult("retry", detail=f"cannot connect to SMTP server: {exc}")
        try:
            smtp.send_message(mime)
        except smtplib.SMTPResponseException as exc:
            self.close()
            code = exc.smtp_code
            detail = f"{code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            return SendResult("retry" if 400 <= code < 500 else "failed", status_code=code, detail=detail)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            return SendResult("failed", detail=f"recipient refused: {exc.recipients}")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            return SendResult("unknown", detail=f"connection lost while sending: {exc}")
        return SendResult("sent", provider_message_id=str(mime["Message-ID"]))

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

        self.settings = settings
        self.client = SendGridAPIClient(api_key=api_key, host=settings.sendgrid_host)

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
            To,
        )

        s = self.settings
        mail = Mail(
            from_email=From(s.from_email, s.from_name),
            to_emails=To(message.to_email, message.to_name),
            subject=message.subject,
            plain_text_content=message.text_body,
            html_content=message.html_body,
        )
        # custom_args carry only the action id: no personal data leaves in event webhooks.
        if message.action_id is not None:
            mail.custom_arg = CustomArg("action_id", str(message.action_id))
        if message.playbook:
            mail.category = Category(message.playbook)
        if message.is_customer_facing and s.sendgrid_asm_group_id is not None:
            mail.asm = Asm(GroupId(s.sendgrid_asm_group_id))
        if message.unsubscribe_url:
            mail.header = Header("List-Unsubscribe", f"<{message.unsubscribe_url}>")
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
            response = self.client.client.mail.send.post(
                request_body=self.payload(message), timeout=self.settings.email_timeout_seconds
            )
        except HTTPError as exc:
            body = exc.body.decode("utf-8", errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
            code = int(exc.status_code)
            if code == 429 or code >= 500:
                return SendResult("retry", status_code=code, detail=body, retry_after=_retry_after(exc.headers))
            return SendResult("failed", status_code=code, detail=_error_text(body))
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror):
                return SendResult("retry", detail=f"cannot reach SendGrid: {exc.reason}")
            return SendResult("unknown", detail=f"no answer from SendGrid: {exc.reason}")
        except (TimeoutError, ConnectionResetError, http.client.HTTPException) as exc:
            return SendResult("unknown", detail=f"no answer from SendGrid: {exc!r}")
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
