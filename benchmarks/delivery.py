"""Render-and-queue and send throughput of the outbox.

    python benchmarks/delivery.py --messages 10000

Renders N customer emails (renewal upgrade offers, half Japanese, half
English) with the real templates, queues them in ops.outbox in batches of
1,000 (one transaction each, as the playbook engine does per play), then
sends them through the real `sendgrid` client to the local v3 test server
(tests/sendgrid_server.py, which validates every body against the published
schema). Uses a throwaway embedded warehouse unless CSFLOW_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from csflow.config import Settings, load_settings  # noqa: E402
from csflow.mailers import SendGridMailer  # noqa: E402
from csflow.outbox import Message, RetryPolicy, deliver, ensure_outbox_schema, queue_messages  # noqa: E402
from csflow.render import Renderer  # noqa: E402
from csflow.warehouse import open_warehouse  # noqa: E402
from tests.sendgrid_server import SendGridStub  # noqa: E402

BATCH = 1_000


def contexts(n: int) -> list[tuple[str, dict]]:
    as_of = date(2026, 3, 31)
    out = []
    for i in range(n):
        japanese = i % 2 == 0
        out.append(
            (
                "ja" if japanese else "en",
                {
                    "account_name": f"株式会社サンプル{i}" if japanese else f"Sample Corp {i}",
                    "recipient_name": f"山田 太郎{i}" if japanese else f"Alex Smith {i}",
                    "plan": "professional",
                    "end_date": (as_of + timedelta(days=60 + i % 60)).isoformat(),
                    "owner_email": f"csm{i % 25:02d}@example.com",
                    "unsubscribe_url": f"https://example.com/unsubscribe?c=C{i}",
                },
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="csflow-bench-"))
    settings = load_settings()
    if settings.uses_embedded_warehouse:
        settings = Settings(state_dir=work / "state")
    renderer = Renderer()
    with open_warehouse(settings) as warehouse:
        engine = warehouse.engine()
        ensure_outbox_schema(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("truncate ops.outbox cascade"))

        start = time.perf_counter()
        items = contexts(args.messages)
        for offset in range(0, len(items), BATCH):
            batch = []
            for i, (locale, ctx) in enumerate(items[offset : offset + BATCH], start=offset):
                rendered = renderer.render("renewal_upgrade_offer", locale, ctx)
                batch.append(
                    Message(
                        dedupe_key=f"bench:{i}",
                        kind="playbook",
                        to_email=f"contact{i}@example.com",
                        to_name=ctx["recipient_name"],
                        subject=rendered.subject,
                        html_body=rendered.html,
                        text_body=rendered.text,
                        action_id=i + 1,
                        playbook="renewal_alert",
                        is_customer_facing=True,
                        unsubscribe_url=ctx["unsubscribe_url"],
                    )
                )
            with engine.begin() as conn:
                queue_messages(conn, batch)
        queue_seconds = time.perf_counter() - start

        with SendGridStub() as stub:
            mailer = SendGridMailer(Settings(sendgrid_host=stub.url, sendgrid_asm_group_id=7), api_key=stub.api_key)
            start = time.perf_counter()
            report = deliver(engine, mailer, policy=RetryPolicy(attempts=3, base_seconds=0.01))
            send_seconds = time.perf_counter() - start
            invalid = len(stub.invalid)
        engine.dispose()
    shutil.rmtree(work, ignore_errors=True)

    n = args.messages
    print(f"render + queue: {n:,} messages in {queue_seconds:.1f}s = {n / queue_seconds:,.0f} messages/s (target >= 500)")
    print(f"send (local SendGrid): {report.sent:,} sent in {send_seconds:.1f}s = {report.sent / send_seconds:,.0f} messages/s")
    print(f"schema-invalid bodies: {invalid}, failed: {report.failed}, unknown: {report.unknown_now}")


if __name__ == "__main__":
    main()
