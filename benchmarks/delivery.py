"""Render-and-queue and send throughput of the outbox, per backend and concurrency.

    python benchmarks/delivery.py --messages 10000 --latency-ms 0,150 --concurrency 1,16

Renders N customer emails (renewal upgrade offers, half Japanese, half
English) with the real templates and queues them in ops.outbox in batches of
1,000 (one transaction each, as the playbook engine does per play). Then, for
each concurrency, sends them:

- to files (the file backend, into a temporary folder);
- through the real `sendgrid` client to the local v3 stand-in
  (tests/sendgrid_server.py, run as its own process, which validates every
  body against the published schema), once per --latency-ms: the time the
  stand-in waits before answering, as a provider far away would.

With latency, a run sends about twenty seconds' worth of messages (the rate is
what matters). Uses a throwaway embedded warehouse unless CSFLOW_DATABASE_URL
is set. Targets (issue: trust at both ends): files >= 2,000 messages/s;
SendGrid at 150 ms >= 100 messages/s with the default concurrency.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from csflow.config import PROJECT_DIR, Settings, load_settings  # noqa: E402
from csflow.mailers import FileMailer, SendGridMailer  # noqa: E402
from csflow.outbox import Mailer, Message, RetryPolicy, deliver, queue_messages  # noqa: E402
from csflow.playbooks import load_playbooks  # noqa: E402
from csflow.render import Renderer  # noqa: E402

BATCH = 1_000
API_KEY = "SG.bench-key"


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
                    "next_plan": "enterprise",
                    "company_name": "Example Co.",
                    "csm_name": f"CSM {i % 25:02d}",
                    "end_date": (as_of + timedelta(days=60 + i % 60)).isoformat(),
                    "owner_email": f"csm{i % 25:02d}@example.com",
                    "unsubscribe_url": f"https://cs.example.com/unsubscribe/token{i}",
                },
            )
        )
    return out


def queue_all(engine: sa.Engine, n: int) -> float:
    renderer = Renderer(catalogue=load_playbooks(PROJECT_DIR / "playbooks.yml").catalogue)
    start = time.perf_counter()
    items = contexts(n)
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
                    from_name="Example Co.",
                    reply_to=ctx["owner_email"],
                )
            )
        with engine.begin() as conn:
            queue_messages(conn, batch)
    return time.perf_counter() - start


def requeue(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("truncate ops.delivery_attempts"))
        conn.execute(
            sa.text("update ops.outbox set status = 'pending', attempts = 0, claimed_by = null, next_attempt_at = null")
        )


def measure(engine: sa.Engine, mailer: Mailer, concurrency: int, limit: int) -> tuple[int, float, str]:
    requeue(engine)
    start = time.perf_counter()
    report = deliver(engine, mailer, concurrency=concurrency, limit=limit, policy=RetryPolicy(attempts=3, base_seconds=0.01))
    seconds = time.perf_counter() - start
    trouble = "" if not report.problem() else f"  ({report.problem()})"
    return report.sent, seconds, trouble


class StandIn:
    """tests/sendgrid_server.py in a process of its own."""

    def __init__(self, latency_ms: float):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.sendgrid_server", "--latency-ms", str(latency_ms), "--api-key", API_KEY],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"the SendGrid stand-in did not start: {line!r}")
        self.url = match.group(1)

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--latency-ms", default="0,150", help="comma-separated latencies of the SendGrid stand-in")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated numbers of sending slots")
    parser.add_argument("--backends", default="file,sendgrid")
    args = parser.parse_args()
    latencies = [float(x) for x in args.latency_ms.split(",") if x]
    concurrencies = [int(x) for x in args.concurrency.split(",") if x]
    backends = args.backends.split(",")

    from csflow.warehouse import open_warehouse

    work = Path(tempfile.mkdtemp(prefix="csflow-bench-"))
    settings = load_settings()
    if settings.uses_embedded_warehouse:
        settings = Settings(state_dir=work / "state")
    n = args.messages
    with open_warehouse(settings) as warehouse:
        engine = warehouse.engine()
        with engine.begin() as conn:
            conn.execute(sa.text("truncate ops.outbox cascade"))
        queue_seconds = queue_all(engine, n)
        print(f"render + queue: {n:,} messages in {queue_seconds:.1f}s = {n / queue_seconds:,.0f} messages/s")

        if "file" in backends:
            for c in concurrencies:
                out = work / f"outbox-{c}"
                sent, seconds, trouble = measure(engine, FileMailer(out, "cs@example.com"), c, n)
                print(f"file, concurrency {c:>3}: {sent:,} sent in {seconds:.1f}s = {sent / seconds:,.0f} messages/s{trouble}")
                shutil.rmtree(out, ignore_errors=True)
        if "sendgrid" in backends:
            for latency in latencies:
                server = StandIn(latency)
                try:
                    for c in concurrencies:
                        mailer = SendGridMailer(Settings(sendgrid_host=server.url, sendgrid_asm_group_id=7), api_key=API_KEY)
                        limit = n if latency == 0 else min(n, int(20 * c / (latency / 1000)))
                        sent, seconds, trouble = measure(engine, mailer, c, limit)
                        print(
                            f"sendgrid at {latency:.0f} ms, concurrency {c:>3}: {sent:,} sent in {seconds:.1f}s "
                            f"= {sent / seconds:,.0f} messages/s{trouble}"
                        )
                finally:
                    print(f"  stand-in: {server.stop()} (schema-invalid bodies must be 0)")
        engine.dispose()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
