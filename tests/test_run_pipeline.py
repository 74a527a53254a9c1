"""run_pipeline under a Prefect test harness, end to end on the embedded
PostgreSQL: ingest, dbt build, validation, playbooks, delivery to files."""

from __future__ import annotations

import email
from datetime import date
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from csflow.config import ConfigError
from csflow.contract import ENTITIES
from csflow.demo import generate

AS_OF = date(2026, 3, 31)


@pytest.fixture
def pipeline_env(warehouse, settings_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point csflow's settings (read inside the flow) at the test database."""
    settings = settings_for(warehouse)
    monkeypatch.setenv("CSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CSFLOW_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("CSFLOW_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(Path(__file__).parents[1] / "playbooks.yml"))
    monkeypatch.setenv("CSFLOW_CONFIG", str(tmp_path / "csflow.yml"))
    (tmp_path / "csflow.yml").write_text("timezone: Asia/Tokyo\n", encoding="utf-8")
    return settings


def outbox_rows(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("select kind, is_customer_facing, status, subject from ops.outbox")).all()


def test_backfill_then_nightly_runs_end_to_end(prefect_harness, pipeline_env, engine: sa.Engine, tmp_path: Path) -> None:
    """A backfill of a past date, then the same date as today's run, then again:
    the past fires nothing (nobody is told late), the present fires every play once, nothing twice."""
    from flows.backfill import backfill
    from flows.run_pipeline import run_pipeline
    from flows.send_digests import send_digests

    landing = tmp_path / "landing"
    written = generate(landing, accounts=80, seed=11, as_of=AS_OF)
    # One NUL byte in one contact's name costs that row, not the night.
    contacts = (landing / "contacts.csv").read_bytes().split(b"\n")
    contacts[5] = contacts[5].replace(b",", b"\x00,", 4).replace(b"\x00,", b",", 3)
    (landing / "contacts.csv").write_bytes(b"\n".join(contacts))
    written["contacts"] -= 1

    # 1. Backfill: AS_OF is in the past, so every play is held, not fired: no email at all.
    [day] = backfill(start=AS_OF, end=AS_OF, landing_dir=str(landing))
    assert day["gate_open"] and day["fired"] == 0 and day["held_past_date"] > 0
    assert outbox_rows(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ops.validation_runs")).scalar_one() == 1
        for name, rows in written.items():
            assert conn.execute(sa.text(f"select count(*) from staging.stg_landing__{name}")).scalar_one() == rows

    # 2. The nightly run for the same date: the held occasions fire now, CSM alerts and customer email alike.
    summary = run_pipeline(as_of=AS_OF, landing_dir=str(landing))
    assert summary.as_of == AS_OF
    assert {f.entity: f.rows_loaded for f in summary.ingest.files} == written
    assert {f.entity: f.rows_rejected for f in summary.ingest.files if f.rows_rejected} == {"contacts": 1}
    assert summary.dbt.counts.get("error", 0) == 0 and summary.dbt.counts.get("fail", 0) == 0
    assert summary.dbt.data_tests and all(t.success for t in summary.dbt.data_tests)
    assert {r.suite for r in summary.validation.results} >= {"raw_usage_events", "dbt account_health"}
    built = set(summary.dbt.built)
    assert {f"staging.stg_landing__{name}" for name in ENTITIES} <= built
    assert {"marts.purchase_trends", "marts.renewal_windows", "marts.account_health", "marts.kpi_monthly"} <= built
    assert "marts.playbook_effectiveness" in built
    assert summary.gate_open, summary.validation.summary_markdown()
    fired = {p.playbook: p.fired for p in summary.playbooks}
    assert fired["post_training_survey"] > 0 and fired["usage_decline"] > 0
    assert summary.delivery.sent > 0 and set(summary.timings) >= {"ingest", "dbt_build", "validate", "deliver"}
    rows = outbox_rows(engine)
    assert any(customer for _, customer, *_ in rows) and {status for _, _, status, _ in rows} == {"sent"}
    assert (tmp_path / "outbox" / "index.html").exists()
    assert summary.data_docs and Path(summary.data_docs).exists()

    # 3. Digests and the KPI report, built from the run's marts, once per period.
    digests = send_digests(as_of=AS_OF, csm_digests=True, kpi_report=True)
    assert digests["csm_digests"] > 0 and digests["kpi_report"] and digests["delivery"]["sent"] == digests["queued"]
    assert send_digests(as_of=AS_OF, csm_digests=True, kpi_report=True)["queued"] == 0

    # 4. Repeating the run fires and sends nothing; an outcomes.csv in the landing folder is imported.
    with engine.connect() as conn:
        action_id = conn.execute(sa.text("select min(action_id) from ops.playbook_actions")).scalar_one()
    (landing / "outcomes.csv").write_text(f"action_id,outcome,note\n{action_id},won,renewed\n0,won,\n", encoding="utf-8")
    again = run_pipeline(as_of=AS_OF, landing_dir=str(landing))
    assert again.fired == 0 and again.delivery.sent == 0
    assert again.outcomes is not None and again.outcomes.recorded == 1
    assert again.outcomes.rejects == [(3, "action_id '0': must be between 1 and 9223372036854775807")]
    assert "outcomes.csv" not in again.ingest.ignored
    with engine.connect() as conn:
        pending = conn.execute(sa.text("select count(*) from ops.playbook_actions where status = 'pending'")).scalar_one()
    assert pending == 0  # every firing took the status of its messages


def test_a_failed_run_emails_the_data_team(prefect_harness, pipeline_env, tmp_path: Path) -> None:
    from flows.run_pipeline import run_pipeline

    with pytest.raises(ConfigError, match="no-such-folder does not exist"):  # before anything loads
        run_pipeline(as_of=AS_OF, landing_dir=str(tmp_path / "no-such-folder"))
    [alert] = (tmp_path / "outbox").glob("*-alert-*.eml")
    message = email.message_from_bytes(alert.read_bytes(), policy=policy.default)
    assert message["To"] == "data-team@example.com"
    assert "run_pipeline failed" in message["Subject"]
    assert "no-such-folder" in message.get_body(("plain",)).get_content()


def test_backfill_ranges_are_checked_before_anything_runs() -> None:
    from flows.backfill import backfill_dates

    today = date(2026, 11, 23)
    assert backfill_dates(date(2026, 11, 21), today, today) == [date(2026, 11, 21), date(2026, 11, 22), today]
    with pytest.raises(ValueError, match="start 2026-03-05 is after end 2026-03-01"):
        backfill_dates(date(2026, 3, 5), date(2026, 3, 1), today)
    with pytest.raises(ValueError, match="end 2026-11-24 is in the future"):
        backfill_dates(today, date(2026, 11, 24), today)
    with pytest.raises(ValueError, match="split ranges longer than 366 days"):
        backfill_dates(date(2024, 1, 1), today, today)
