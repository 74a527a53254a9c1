"""csflow's own tables: the migrations build exactly what csflow/schema.py
declares, and a warehouse left by the release before migrations upgrades in
place without losing history or firing anything twice."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from csflow.cli import app
from csflow.config import ConfigError
from csflow.schema import current_revision, head_revision, metadata, require_current
from tests.conftest import new_database

STOP7 = Path(__file__).parent / "fixtures" / "warehouse_stop7.sql"
runner = CliRunner()


def schema_diff(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match csflow/schema.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return obj.schema in ("raw", "ops") and name != "alembic_version"
        return True

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_schemas": True, "include_object": ours, "compare_type": True}
        )
        return compare_metadata(context, metadata)


def kept(engine: sa.Engine) -> dict[str, Any]:
    """What an upgrade must not lose: every ops row, the loads, account_health's history."""
    with engine.connect() as conn:
        counts = {
            table: conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
            for table in (
                "ops.playbook_actions", "ops.tasks", "ops.outbox", "ops.delivery_attempts",
                "ops.validation_runs", "ops.validation_results", "raw.loads", "raw.usage_events",
            )
        }
        counts["outcomes"] = conn.execute(
            sa.text("select array_agg(action_id || ':' || outcome order by action_id) from ops.playbook_actions where outcome is not null")
        ).scalar_one()
        counts["health days"] = conn.execute(
            sa.text("select array_agg(distinct as_of_date order by as_of_date) from marts.account_health")
        ).scalar_one()
    return counts


def test_the_migrations_build_exactly_what_schema_py_declares(server) -> None:
    with new_database(server, migrated=False) as db:
        engine = db.engine()
        assert current_revision(engine) is None
        require_current(engine)  # a new warehouse gets its tables without being asked
        assert current_revision(engine) == head_revision()
        assert schema_diff(engine) == []
        engine.dispose()


def test_a_warehouse_of_the_release_before_migrations_upgrades_in_place(
    server, prefect_harness, settings_for, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.run_pipeline import run_pipeline

    with new_database(server, migrated=False) as db:
        engine = db.engine()
        with engine.begin() as conn, conn.connection.driver_connection.cursor() as cursor:
            cursor.execute(STOP7.read_text(encoding="utf-8"))  # no parameters: the dump's "%" are text
        before = kept(engine)
        assert before["outcomes"] == ["1:won"] and len(before["health days"]) == 8

        # Nothing writes to it until someone migrates on purpose.
        with pytest.raises(ConfigError, match=r"from before migrations, this csflow needs .*: run `csflow migrate`"):
            require_current(engine)
        settings = settings_for(db)
        for name, value in {
            "CSFLOW_DATABASE_URL": settings.database_url,
            "CSFLOW_STATE_DIR": str(settings.state_dir),
            "CSFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
            "CSFLOW_PLAYBOOKS_FILE": str(Path(__file__).parents[1] / "playbooks.yml"),
            "CSFLOW_CONFIG": str(tmp_path / "csflow.yml"),
        }.items():
            monkeypatch.setenv(name, value)
        (tmp_path / "csflow.yml").write_text("timezone: Asia/Tokyo\n", encoding="utf-8")
        result = runner.invoke(app, ["ingest", str(tmp_path)])
        assert result.exit_code == 1 and "run `csflow migrate`" in result.stderr

        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert f"none -> {head_revision()}" in result.output
        assert schema_diff(engine) == []
        assert kept(engine) == before
        assert f"warehouse tables: revision {head_revision()}" in runner.invoke(app, ["migrate"]).output  # nothing to do

        # The first run after the upgrade, on the same data: every occasion had fired, so nothing fires.
        summary = run_pipeline(as_of=date(2026, 3, 31), landing_dir=str(tmp_path), ingest=False)
        assert summary.gate_open, summary.validation.summary_markdown()
        assert summary.fired == 0
        after = kept(engine)
        assert after["health days"] == before["health days"] and after["outcomes"] == before["outcomes"]
        assert after["ops.playbook_actions"] == before["ops.playbook_actions"]
        engine.dispose()
