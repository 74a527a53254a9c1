"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh
database per test that needs one, and one Prefect test harness."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from csflow.config import Settings  # noqa: E402
from csflow.warehouse import Warehouse, open_warehouse  # noqa: E402

MARTS_AS_OF = date(2026, 3, 31)
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="session")
def server() -> Iterator[Warehouse]:
    """The embedded PostgreSQL 18 from the wheel, private to this test session.

    Its data lives outside pytest's tmp tree: pytest makes that tree 0700
    again for each new tmp dir, and a server run as its own system user (as
    the wheel does under root) would lose its files mid-session.
    """
    state = Path(tempfile.mkdtemp(prefix="csflow-test-"))
    try:
        with open_warehouse(Settings(state_dir=state)) as warehouse:
            yield warehouse
    finally:
        shutil.rmtree(state, ignore_errors=True)


TEMPLATE = "csflow_template"


def _migrated_template(server: Warehouse) -> None:
    """One database with csflow's tables (csflow migrate), copied for each test: cheaper than migrating each."""
    from csflow.schema import upgrade

    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": TEMPLATE}).first():
            admin.dispose()
            return
        conn.execute(sa.text(f'create database "{TEMPLATE}"'))
    admin.dispose()
    engine = sa.create_engine(server.url.set(database=TEMPLATE))
    upgrade(engine)
    engine.dispose()


@contextmanager
def new_database(server: Warehouse, migrated: bool = True) -> Iterator[Warehouse]:
    """A new database on the session's server (with csflow's tables, unless asked for an empty one), dropped afterwards."""
    # Unique whatever copy of this module runs it (pytest's conftest and a test's `from tests.conftest import`).
    name = f"t{os.getpid()}_{uuid.uuid4().hex[:12]}"
    if migrated:
        _migrated_template(server)
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"' + (f' template "{TEMPLATE}"' if migrated else "")))
    try:
        yield Warehouse(server.url.set(database=name), embedded=True, pgdata=server.pgdata)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def warehouse(server: Warehouse) -> Iterator[Warehouse]:
    with new_database(server) as db:
        yield db


@pytest.fixture
def engine(warehouse: Warehouse) -> Iterator[sa.Engine]:
    eng = warehouse.engine()
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def shared_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir for the session, so dbt's partial parsing carries across tests."""
    return tmp_path_factory.mktemp("csflow-state")


@pytest.fixture
def settings_for(tmp_path: Path, shared_state: Path):
    """Settings pointing csflow at a test database, as CSFLOW_* variables would."""

    def make(warehouse: Warehouse, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": warehouse.url.render_as_string(hide_password=False),
            "state_dir": shared_state,
            "outbox_dir": tmp_path / "outbox",
            "landing_dir": tmp_path / "landing",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test harness (temporary API and database) for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def dbt_build(warehouse: Warehouse, settings_for):
    """Load a landing folder, set the run's as_of and `dbt build` a selection.

    Model tests use hand-made landing files, so what they check is the whole
    path a customer's data takes: ingest, staging, intermediate, marts.
    """
    from csflow.dbt import run_dbt
    from csflow.ingest import ingest_folder
    from csflow.run_context import write_run_context

    settings = settings_for(warehouse)

    def build(landing: Path | None, as_of: date, select: str = "+marts", timezone: str = "Asia/Tokyo"):
        engine = warehouse.engine()
        try:
            if landing is not None:
                ingest_folder(engine, landing)
            write_run_context(engine, as_of, "test", timezone)
        finally:
            engine.dispose()
        # cautious: tests of models outside the selection (which may not exist yet) stay out.
        return run_dbt(
            warehouse, settings, ["build", "--select", select, "--indirect-selection", "cautious"], use_prefect=False
        )

    return build


@pytest.fixture(scope="session")
def built_marts(server: Warehouse, shared_state: Path, tmp_path_factory: pytest.TempPathFactory):
    """Generated landing data (as of 2026-03-31) with one hostile account name,
    built through every mart once per session; tests that use it reset ops."""
    from csflow.dbt import run_dbt
    from csflow.demo import generate
    from csflow.ingest import ingest_folder
    from csflow.run_context import write_run_context

    landing = tmp_path_factory.mktemp("playbooks") / "landing"
    generate(landing, accounts=120, seed=5, as_of=MARTS_AS_OF)
    path = landing / "accounts.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # An account with a renewal coming up gets the hostile name.
    contracts = list(csv.DictReader((landing / "contracts.csv").read_text(encoding="utf-8").splitlines()))
    renewing = {c["account_id"] for c in contracts if c["status"] == "active" and "2026-06-01" <= c["end_date"] <= "2026-07-31"}
    for row in rows:
        if row["account_id"] in renewing:
            row["account_name"] = EVIL
            break
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with new_database(server) as db:
        settings = Settings(
            database_url=db.url.render_as_string(hide_password=False),
            state_dir=shared_state,
            playbooks_file=Path(__file__).parents[1] / "playbooks.yml",
        )
        eng = db.engine()
        ingest_folder(eng, landing)
        write_run_context(eng, MARTS_AS_OF, "test", settings.timezone)
        run_dbt(db, settings, ["build", "--select", "+marts", "--exclude", "test_type:unit"], use_prefect=False)
        eng.dispose()
        yield db, settings


@pytest.fixture
def marts_engine(built_marts) -> Iterator[sa.Engine]:
    """The session's built marts with the playbook ledger, tasks, outbox and suppressions emptied."""
    db, _ = built_marts
    eng = db.engine()
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                "truncate ops.outbox, ops.tasks, ops.playbook_actions, ops.suppressions, ops.audit_log, "
                "ops.signin_links, ops.signin_attempts, ops.message_events, ops.survey_responses cascade"
            )
        )
    yield eng
    eng.dispose()


@pytest.fixture
def fired(built_marts, marts_engine) -> list[dict]:
    """The session's marts with the plays of MARTS_AS_OF fired; returns the firings."""
    from csflow.playbooks import run_playbooks

    _, settings = built_marts
    run_playbooks(marts_engine, settings, MARTS_AS_OF, gate_open=True)
    with marts_engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(sa.text("select * from ops.playbook_actions order by action_id")).mappings()
        ]


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write a landing file from an indented literal (tests keep data inline)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = [line.strip() for line in text.strip().splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
