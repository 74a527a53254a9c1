"""CSM digests and the KPI report: one digest per CSM with something to act
on, none for the others; charts inline; each queued once per period."""

from __future__ import annotations

import dataclasses
import email
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from csflow.dbt import run_dbt
from csflow.digests import build_digests
from csflow.mailers import FileMailer
from csflow.outbox import RetryPolicy, deliver
from csflow.playbooks import run_playbooks
from tests.conftest import MARTS_AS_OF


@pytest.fixture
def settings(built_marts, tmp_path: Path):
    return dataclasses.replace(built_marts[1], state_dir=tmp_path / "state")


def test_each_csm_with_work_gets_one_digest_per_day(marts_engine, settings) -> None:
    run_playbooks(marts_engine, settings, MARTS_AS_OF, gate_open=True)
    first = build_digests(marts_engine, settings, MARTS_AS_OF)
    with marts_engine.connect() as conn:
        owners = conn.execute(sa.text("select count(distinct owner_email) from staging.stg_landing__accounts")).scalar_one()
        digests = conn.execute(sa.text("select to_email, text_body from ops.outbox where kind = 'digest'")).all()
    assert first.csm_digests + first.csms_with_nothing == owners
    assert len(digests) == first.csm_digests > 0
    assert any("New alerts" in body for _, body in digests)  # today's firings are in it
    again = build_digests(marts_engine, settings, MARTS_AS_OF)
    assert again.queued == 0  # once per CSM per day, and the KPI report once per week


def test_a_csm_with_nothing_to_act_on_gets_no_digest(built_marts, marts_engine, settings) -> None:
    # A CSM whose only account has no renewals, alerts, risk, tasks or comments.
    db, _ = built_marts
    with marts_engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into raw.accounts (account_id, account_name, owner_email, created_date, _load_id, _line) "
                "values ('QUIET1', 'Quiet Co', 'quiet@example.com', '2024-01-01', 0, 0)"
            )
        )
    try:
        run_dbt(db, settings, ["run", "--select", "account_directory"], use_prefect=False)  # as the next build would
        report = build_digests(marts_engine, settings, MARTS_AS_OF, include_kpi_report=False)
        with marts_engine.connect() as conn:
            recipients = conn.execute(sa.text("select to_email from ops.outbox where kind = 'digest'")).scalars().all()
    finally:
        with marts_engine.begin() as conn:
            conn.execute(sa.text("delete from raw.accounts where account_id = 'QUIET1'"))
        run_dbt(db, settings, ["run", "--select", "account_directory"], use_prefect=False)
    assert "quiet@example.com" not in recipients
    assert report.csms_with_nothing >= 1 and report.csm_digests == len(recipients) > 0


def test_kpi_report_has_inline_charts_a_table_and_a_standalone_file(marts_engine, settings, tmp_path: Path) -> None:
    report = build_digests(marts_engine, settings, MARTS_AS_OF)
    assert report.kpi_report_file is not None and report.kpi_report_file.exists()
    standalone = report.kpi_report_file.read_text(encoding="utf-8")
    assert standalone.count("data:image/png;base64,") == 3
    out = tmp_path / "outbox"
    deliver(marts_engine, FileMailer(out, "cs@example.com"), policy=RetryPolicy(attempts=1))
    eml = next(p for p in out.glob("*-report-*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "leadership@example.com"
    images = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert {part["Content-ID"] for part in images} == {"<retention>", "<satisfaction>", "<expansion>"}
    html = msg.get_body(("html",)).get_content()
    assert "cid:retention" in html and "NRR" in html
