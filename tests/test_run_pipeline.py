"""run_pipeline under a Prefect test harness builds the staging models on the
embedded PostgreSQL from generated landing files."""

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
    monkeypatch.setenv("CSFLOW_CONFIG", str(tmp_path / "csflow.yml"))
    (tmp_path / "csflow.yml").write_text("timezone: Asia/Tokyo\n", encoding="utf-8")
    return settings


def test_run_pipeline_builds_staging_models(prefect_harness, pipeline_env, engine: sa.Engine, tmp_path: Path) -> None:
    from flows.run_pipeline import run_pipeline

    landing = tmp_path / "landing"
    written = generate(landing, accounts=60, seed=11, as_of=date(2026, 3, 31))
    summary = run_pipeline(as_of=date(2026, 3, 31), landing_dir=str(landing))

    assert summary["as_of"] == "2026-03-31"
    assert {f["entity"]: f["rows_loaded"] for f in summary["files"]} == written
    assert summary["dbt"]["counts"].get("error", 0) == 0 and summary["dbt"]["counts"].get("fail", 0) == 0
    assert sorted(summary["dbt"]["built"]) == sorted(
        [f"staging.stg_landing__{name}" for name in ENTITIES] + ["staging.stg_ops__run_context"]
    )
    with engine.connect() as conn:
        for name, rows in written.items():
            assert conn.execute(sa.text(f"select count(*) from staging.stg_landing__{name}")).scalar_one() == rows
        assert conn.execute(sa.text("select as_of_date from staging.stg_ops__run_context")).scalar_one() == date(
            2026, 3, 31
        )
