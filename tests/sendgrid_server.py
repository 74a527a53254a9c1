"""A local HTTP server that speaks SendGrid's v3 API: mail send and suppressions.

Every request body is validated against the published OpenAPI schema in
../shared/specs/sendgrid-mail-v3.json, so a payload SendGrid would refuse
fails our tests too. Tests script its answers (429, 5xx, dropped
connections, delays) and read what it accepted; `latency` adds a round trip
to every request, as a real provider far away would.

Run on its own (benchmarks/delivery.py does, so the server's work does not
share the sender's interpreter):

    python -m tests.sendgrid_server --port 0 --latency-ms 150

It prints `listening on http://127.0.0.1:PORT` and, when stopped with
SIGTERM or SIGINT, the number of messages it accepted.

It also plays SendGrid's other side: the unsubscribe group's and the global
suppression lists (GET /v3/asm/groups/{id}/suppressions, GET
/v3/suppression/unsubscribes with limit and offset), and the Event Webhook's
signing key, so tests post events signed the way SendGrid signs them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "sendgrid-mail-v3.json"
REQUEST_SCHEMA = "#/components/requestBodies/PostMailSend/content/application~1json/schema"


def mail_send_validator(spec_path: Path = SPEC) -> Draft202012Validator:
    """Validator for the mail send request body, refs resolved within the spec."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    schema = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    # Known gap in the published spec (specs/README.md): the live API takes an
    # object of strings for top-level custom_args, not a string.
    schema["properties"]["custom_args"] = {"type": "object", "additionalProperties": {"type": "string"}}
    return Draft202012Validator({**spec, "$ref": REQUEST_SCHEMA}, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class Scripted:
    """One scripted answer: a status with headers and body, or a dropped connection."""

    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    # Accept and record the message, then close the connection without answering.
    drop_after_accept: bool = False
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections when many senders arrive at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a sender killed mid-request leaves a broken pipe: that is the test, not a server fault


class SendGridStub:
    def __init__(self, api_key: str = "SG.test-key", latency: float = 0.0, port: int = 0):
        self.api_key = api_key
        self.latency = latency  # seconds added to every answer
        self.validator = mail_send_validator()
        self.script: deque[Scripted] = deque()
        self.accepted: list[dict[str, Any]] = []  # bodies answered with 202 (or accepted then dropped)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most mail send requests being answered at once
        self.invalid: list[str] = []  # schema errors seen
        self.group_suppressions: dict[int, list[str]] = {}  # unsubscribe group id -> addresses
        self.global_unsubscribes: list[str] = []
        self._signing_key = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SendGridStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def then(self, *answers: Scripted) -> SendGridStub:
        self.script.extend(answers)
        return self

    @property
    def webhook_public_key(self) -> str:
        """The Event Webhook's verification key as SendGrid's settings page shows it (base64 DER)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self._signing_key is None:
            self._signing_key = ec.generate_private_key(ec.SECP256R1())
        der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def signed_event_post(self, events: list[dict[str, Any]], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """A webhook post's body and headers, signed as SendGrid signs them (ECDSA P-256 over timestamp + body)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        self.webhook_public_key  # noqa: B018 - makes the key on first use
        body = json.dumps(events).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._signing_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }

    def accepted_action_ids(self) -> list[str]:
        return [(body.get("custom_args") or {}).get("action_id") for body in self.accepted]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                    return self._answer(401, {"errors": [{"message": "authorization required", "field": None}]})
                path, _, query = self.path.partition("?")
                group = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions", path)
                if group:
                    return self._answer(200, stub.group_suppressions.get(int(group.group(1)), []))
                if path == "/v3/suppression/unsubscribes":
                    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
                    offset, limit = int(params.get("offset", 0)), int(params.get("limit", 500))
                    page = stub.global_unsubscribes[offset : offset + limit]
                    return self._answer(200, [{"created": 1764547200, "email": a} for a in page])
                return self._answer(404, {"errors": [{"message": "not found", "field": None}]})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                arrived = time.monotonic()
                with stub._lock:
                    stub.requests += 1
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    self._mail_send(arrived)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            def _mail_send(self, arrived: float) -> None:
                if self.path != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found", "field": None}]})
                if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                    return self._answer(401, {"errors": [{"message": "authorization required", "field": None}]})
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._answer(400, {"errors": [{"message": "Bad Request", "field": None}]})
                errors = sorted(stub.validator.iter_errors(body), key=lambda e: list(e.path))
                if errors:
                    with stub._lock:
                        stub.invalid.extend(e.message for e in errors)
                    return self._answer(
                        400,
                        {
                            "errors": [
                                {"message": e.message, "field": ".".join(map(str, e.path)) or None, "help": None}
                                for e in errors
                            ]
                        },
                    )
                with stub._lock:
                    answer = stub.script.popleft() if stub.script else Scripted()
                # latency is the whole round trip as the sender sees it, our own checks included
                wait = answer.delay + stub.latency - (time.monotonic() - arrived)
                if wait > 0:
                    time.sleep(wait)
                if answer.status == 202:
                    with stub._lock:
                        stub.accepted.append(body)
                    if answer.drop_after_accept:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    return self._answer(202, None, {"X-Message-Id": uuid.uuid4().hex[:22], **answer.headers})
                return self._answer(answer.status, answer.body or {"errors": [{"message": "scripted"}]}, answer.headers)

        return Handler


def main() -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="A local SendGrid v3 mail send server for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--api-key", default="SG.test-key")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SendGridStub(api_key=args.api_key, latency=args.latency_ms / 1000, port=args.port) as stub:
        print(f"listening on {stub.url}", flush=True)
        stop.wait()
        print(f"accepted {len(stub.accepted)} invalid {len(stub.invalid)}", flush=True)


if __name__ == "__main__":
    main()
