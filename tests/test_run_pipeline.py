"""run_pipeline under a Prefect test harness, end to end on the embedded
PostgreSQL: ingest, dbt build, validation, playbooks, delivery to files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from csflow.contract import ENTITIES
from csflow.generate import generate


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


def test_run_pipeline_end_to_end(prefect_harness, pipeline_env, engine: sa.Engine, tmp_path: Path) -> None:
    from flows.run_pipeline import run_pipeline

    landing = tmp_path / "landing"
    written = generate(landing, accounts=80, seed=11, as_of=date(2026, 3, 31))
    summary = run_pipeline(as_of=date(2026, 3, 31), landing_dir=str(landing))

    assert summary["as_of"] == "2026-03-31"
    assert {f["entity"]: f["rows_loaded"] for f in summary["files"]} == written
    assert summary["dbt"]["counts"].get("error", 0) == 0 and summary["dbt"]["counts"].get("fail", 0) == 0
    built = set(summary["dbt"]["built"])
    assert {f"staging.stg_landing__{name}" for name in ENTITIES} <= built
    assert {"marts.purchase_trends", "marts.renewal_windows", "marts.account_health", "marts.kpi_monthly"} <= built
    assert summary["gate_open"], summary["validation_markdown"]
    fired = sum(p["fired"] for p in summary["playbooks"])
    assert fired > 0 and summary["delivery"]["sent"] >= fired - sum(p["skipped"] for p in summary["playbooks"])
    assert (tmp_path / "outbox" / "index.html").exists()
    assert summary["data_docs"] and Path(summary["data_docs"]).exists()
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ops.validation_runs")).scalar_one() == 1
        for name, rows in written.items():
            assert conn.execute(sa.text(f"select count(*) from staging.stg_landing__{name}")).scalar_one() == rows

    again = run_pipeline(as_of=date(2026, 3, 31), landing_dir=str(landing))  # nothing is sent twice
    assert sum(p["fired"] for p in again["playbooks"]) == 0 and again["delivery"]["sent"] == 0
